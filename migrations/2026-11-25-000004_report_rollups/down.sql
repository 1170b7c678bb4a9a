DROP TRIGGER referrals_rollup_dirty ON referrals;
DROP TRIGGER assistance_rollup_dirty ON assistance_records;
DROP TRIGGER victims_rollup_dirty ON victims;
DROP FUNCTION report_rollup_mark_related();
DROP FUNCTION report_rollup_mark_victim();
DROP TABLE report_rollup_dirty;
DROP TABLE report_rollups;
DROP TABLE report_rollup_shapes;
