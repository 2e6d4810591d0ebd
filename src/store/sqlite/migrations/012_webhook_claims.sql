-- Which process is delivering a webhook event, and until when: a sender claims one event at a
-- time, so two processes (or nodes) never post the same event at once, and an event whose
-- sender died is claimed again once its claim runs out.
ALTER TABLE webhook_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE webhook_outbox ADD COLUMN claimed_until INTEGER;
