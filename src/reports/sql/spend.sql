-- Spends rho $3 of organisation $2's budget in the period starting $1, counting one release.
INSERT INTO report_spend (period, organization_id, rho, releases)
VALUES ($1, $2, $3, 1)
ON CONFLICT (period, organization_id)
DO UPDATE SET rho = report_spend.rho + EXCLUDED.rho, releases = report_spend.releases + 1
