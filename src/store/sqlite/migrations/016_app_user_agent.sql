-- The User-Agent an app's calls to its provider carry, when the tenant set one (Reddit
-- throttles generic user agents); NULL uses the provider's default.
ALTER TABLE oauth_apps ADD COLUMN user_agent TEXT;
