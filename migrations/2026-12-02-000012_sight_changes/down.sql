DROP TABLE sight_changes;
