DROP TABLE support_plan_goals;
DROP TABLE tasks;
