/*
 * webhook_events.c — the 14 webhook events (mlflow-webhooks.md §2) and the
 * test endpoint's example data for each (§7), in the field order of §5 and
 * Python json.dumps's separators, as MLflow sends them.
 */
#include <string.h>

#include "webhooks.h"

const char *const tally_webhook_entities[10] = {
    "entity_unspecified", "registered_model", "model_version", "model_version_tag",
    "model_version_alias", "prompt", "prompt_version", "prompt_tag", "prompt_version_tag",
    "prompt_alias"};

const char *const tally_webhook_actions[5] = {"action_unspecified", "created", "updated",
                                              "deleted", "set"};

#define TAGS "{\"example_key\": \"example_value\"}"

static const struct event_def {
    const char *entity, *action;
    const char *example; /* data of the test delivery */
} events[] = {
    {"registered_model", "created",
     "{\"name\": \"example_model\", \"tags\": " TAGS
     ", \"description\": \"An example registered model\"}"},
    {"model_version", "created",
     "{\"name\": \"example_model\", \"version\": \"1\", \"source\": \"models:/123\", "
     "\"run_id\": \"abcd1234abcd5678\", \"tags\": " TAGS
     ", \"description\": \"An example model version\"}"},
    {"model_version_tag", "set",
     "{\"name\": \"example_model\", \"version\": \"1\", \"key\": \"example_key\", "
     "\"value\": \"example_value\"}"},
    {"model_version_tag", "deleted",
     "{\"name\": \"example_model\", \"version\": \"1\", \"key\": \"example_key\"}"},
    {"model_version_alias", "created",
     "{\"name\": \"example_model\", \"alias\": \"example_alias\", \"version\": \"1\"}"},
    {"model_version_alias", "deleted", "{\"name\": \"example_model\", \"alias\": \"example_alias\"}"},
    {"prompt", "created",
     "{\"name\": \"example_prompt\", \"tags\": " TAGS ", \"description\": \"An example prompt\"}"},
    {"prompt_version", "created",
     "{\"name\": \"example_prompt\", \"version\": \"1\", \"template\": \"Hello {{name}}!\", "
     "\"tags\": " TAGS ", \"description\": \"An example prompt version\"}"},
    {"prompt_tag", "set",
     "{\"name\": \"example_prompt\", \"key\": \"example_key\", \"value\": \"example_value\"}"},
    {"prompt_tag", "deleted", "{\"name\": \"example_prompt\", \"key\": \"example_key\"}"},
    {"prompt_version_tag", "set",
     "{\"name\": \"example_prompt\", \"version\": \"1\", \"key\": \"example_key\", "
     "\"value\": \"example_value\"}"},
    {"prompt_version_tag", "deleted",
     "{\"name\": \"example_prompt\", \"version\": \"1\", \"key\": \"example_key\"}"},
    {"prompt_alias", "created",
     "{\"name\": \"example_prompt\", \"alias\": \"example_alias\", \"version\": \"1\"}"},
    {"prompt_alias", "deleted", "{\"name\": \"example_prompt\", \"alias\": \"example_alias\"}"},
};

#define N_EVENTS (sizeof events / sizeof events[0])

static const struct event_def *find(const char *entity, const char *action)
{
    for (size_t i = 0; i < N_EVENTS; i++)
        if (strcmp(events[i].entity, entity) == 0 && strcmp(events[i].action, action) == 0)
            return &events[i];
    return NULL;
}

int tally_webhook_event_valid(const char *entity, const char *action)
{
    return entity && action && find(entity, action) != NULL;
}

const char *tally_webhook_valid_actions(const char *entity)
{
    static const struct {
        const char *entity, *actions;
    } lists[] = {
        {"registered_model", "['created']"},      {"model_version", "['created']"},
        {"prompt", "['created']"},                {"prompt_version", "['created']"},
        {"model_version_tag", "['set', 'deleted']"}, {"prompt_tag", "['set', 'deleted']"},
        {"prompt_version_tag", "['set', 'deleted']"},
        {"model_version_alias", "['created', 'deleted']"},
        {"prompt_alias", "['created', 'deleted']"},
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (strcmp(lists[i].entity, entity) == 0)
            return lists[i].actions;
    return "[]";
}

const char *tally_webhook_example_data(const char *entity, const char *action)
{
    const struct event_def *e = find(entity, action);
    return e ? e->example : "{}";
}
