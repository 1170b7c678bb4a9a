DROP TABLE external_referrals;
