-- The last check of each OAuth app's configuration (`POST /v1/oauth-apps/{id}/check`, or the
-- refresh engine finding its credentials refused): what each check found, and when.
ALTER TABLE oauth_apps ADD COLUMN last_check TEXT;       -- JSON {source, checks: [{name, status, message}]}
ALTER TABLE oauth_apps ADD COLUMN last_check_at INTEGER; -- unix seconds; NULL: never checked
