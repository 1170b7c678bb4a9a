-- Spends rho of an organisation's budget in a period, counting one release.
-- Bound: the period's first day, the organisation, rho. (`db::fixed` reads every dollar-number
-- in this text as a placeholder, comments included: name them in words here.)
INSERT INTO report_spend (period, organization_id, rho, releases)
VALUES ($1, $2, $3, 1)
ON CONFLICT (period, organization_id)
DO UPDATE SET rho = report_spend.rho + EXCLUDED.rho, releases = report_spend.releases + 1
