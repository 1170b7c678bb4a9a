-- Privacy budget spent in a range of periods: by one organisation (rho and releases), by everyone
-- (the deployment cap), and that organisation's allowance if one is set.
-- Bound: the first period, the end of the range (exclusive), the organisation. (`db::fixed` reads
-- every dollar-number in this text as a placeholder, comments included: name them in words here.)
SELECT coalesce(sum(rho) FILTER (WHERE organization_id = $3), 0) AS own,
       coalesce(sum(releases) FILTER (WHERE organization_id = $3), 0)::bigint AS releases,
       coalesce(sum(rho), 0) AS everyone,
       (SELECT allowance FROM report_allowances WHERE organization_id = $3) AS allowance
  FROM report_spend
 WHERE period >= $1 AND period < $2
