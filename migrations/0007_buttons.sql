-- The buttons on cards (docs/actions.md, "Buttons"). A platform carries back only a button's
-- opaque id; what it does, to which job, is read here. An unknown or expired id is refused.

CREATE TABLE buttons (
    -- 128 random bits, hex: the custom id (Discord) or action id (Slack) is 'cb1:' + this.
    id          TEXT PRIMARY KEY,
    -- 'rerun', 'stop', 'mute_1h', 'mute_4h', 'mute_tomorrow', 'ack', 'confirm_rerun',
    -- 'confirm_stop'.
    action      TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    -- The config channel whose card carries it (its timezone for "Mute until 09:00"); NULL on
    -- answers to chat commands.
    channel     TEXT,
    -- The delivery whose card carries it: a card sent again (a retry) gets the same ids.
    card        TEXT,
    -- A confirmation: only the person who clicked the first step ('discord:<id>') confirms.
    for_user    TEXT,
    -- A confirmation: the card message the first click came from (JSON: channel, message id
    -- and its embeds), so the outcome can be shown on it.
    origin      TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX buttons_card ON buttons (card, action) WHERE card IS NOT NULL;
CREATE INDEX buttons_expiry ON buttons (expires_at);
