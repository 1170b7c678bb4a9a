DROP TABLE restricted_cases;
DROP TABLE case_assignments;
