-- An app's accounts: counted before the app is deleted (`app_in_use`), listed to delete them
-- with it (`?cascade=true`), and made due again when the app's secret changes.
CREATE INDEX accounts_by_app ON accounts (oauth_app_id, owner);
