-- `dravo_accounts{provider, status}` (GET /metrics) counts every account by provider and
-- status at each scrape: this index makes that a scan of the index alone (a few bytes a row)
-- instead of the table with its sealed tokens.
CREATE INDEX accounts_by_provider_status ON accounts (provider, status);
