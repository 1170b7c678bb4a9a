ALTER TABLE transfers DROP CONSTRAINT transfers_case_file_check;
ALTER TABLE transfers DROP COLUMN case_file;
