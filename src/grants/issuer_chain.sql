-- Everyone who issued a user's credential, that issuer's issuer, and so on ($1: the user).
-- UNION (not UNION ALL) ends the walk if two people reset each other.
WITH RECURSIVE chain(id) AS (
    SELECT credential_issued_by FROM users WHERE id = $1 AND credential_issued_by IS NOT NULL
    UNION
    SELECT u.credential_issued_by FROM users u JOIN chain c ON u.id = c.id
     WHERE u.credential_issued_by IS NOT NULL
)
SELECT id FROM chain
