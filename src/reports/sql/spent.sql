-- Privacy budget spent in the periods from $1 up to $2 (exclusive): by organisation $3 (rho and
-- releases), by everyone (the deployment cap), and $3's allowance if one is set.
SELECT coalesce(sum(rho) FILTER (WHERE organization_id = $3), 0) AS own,
       coalesce(sum(releases) FILTER (WHERE organization_id = $3), 0)::bigint AS releases,
       coalesce(sum(rho), 0) AS everyone,
       (SELECT allowance FROM report_allowances WHERE organization_id = $3) AS allowance
  FROM report_spend
 WHERE period >= $1 AND period < $2
