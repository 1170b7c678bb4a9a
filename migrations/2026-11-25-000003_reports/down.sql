DROP INDEX victims_identified_on_idx;
DROP TRIGGER report_releases_no_truncate ON report_releases;
DROP TRIGGER report_releases_no_update ON report_releases;
DROP TABLE report_releases;
DROP TABLE country_regions;
