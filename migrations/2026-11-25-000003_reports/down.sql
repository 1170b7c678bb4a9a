DROP INDEX victims_identified_on_idx;
DROP TABLE report_releases;
DROP TABLE country_regions;
