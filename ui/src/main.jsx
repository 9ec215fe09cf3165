// main.jsx — the app's shell: top bar and the page for the current path.
//   /                      experiments        /experiments/<id>   runs table
//   /runs/<id>             one run            /compare?runs=...   compare charts
//   /models, /models/<n>   model registry
import { render } from 'preact';
import './style.css';
import { Compare } from './compare.jsx';
import { Experiments } from './experiments.jsx';
import { ModelPage, Models } from './models.jsx';
import { interceptLinks, useLocation } from './router.js';
import { RunPage } from './run.jsx';
import { Runs } from './runs.jsx';

function Page() {
  const { path, query } = useLocation();
  let m;
  if (path === '/' || path === '/experiments' || path === '/experiments/') return <Experiments query={query} />;
  if ((m = path.match(/^\/experiments\/([^/]+)\/?$/))) return <Runs id={decodeURIComponent(m[1])} query={query} />;
  if ((m = path.match(/^\/runs\/([^/]+)\/?$/))) return <RunPage id={decodeURIComponent(m[1])} query={query} />;
  if (path === '/compare' || path === '/compare/') return <Compare query={query} />;
  if (path === '/models' || path === '/models/') return <Models query={query} />;
  if ((m = path.match(/^\/models\/(.+?)\/?$/))) return <ModelPage name={decodeURIComponent(m[1])} />;
  return (
    <div class="page">
      <h1>Not found</h1>
      <p>
        No page at <code>{path}</code>. <a href="/">Experiments</a>
      </p>
    </div>
  );
}

function App() {
  const { path } = useLocation();
  const tab = path.startsWith('/models') ? 'models' : 'experiments';
  return (
    <>
      <header class="top">
        <a href="/" class="brand">▮▮▮ Tally</a>
        <nav>
          <a href="/" class={tab === 'experiments' ? 'on' : ''}>Experiments</a>
          <a href="/models" class={tab === 'models' ? 'on' : ''}>Models</a>
        </nav>
      </header>
      <main>
        <Page />
      </main>
    </>
  );
}

const root = document.getElementById('app');
interceptLinks(document.body);
render(<App />, root);
