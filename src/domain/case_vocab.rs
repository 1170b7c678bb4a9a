//! Case-record vocabularies, aligned with HTCDS v2 and CTDC so partners can compare figures.

use crate::text_enum;

text_enum! {
    /// Where the case stands.
    pub enum CaseStatus {
        Active => "active",
        FollowUp => "follow_up",
        Closed => "closed",
        ClosedReferred => "closed_referred",
    }
}

text_enum! {
    /// Why a case was closed (HTCDS `cas_ReasonForCaseClosure`, which the standard leaves as free
    /// text: these codes are Haven's, and export as their labels). `referred_elsewhere` closes a
    /// case as `closed_referred`, every other reason as `closed`.
    pub enum ClosureReason {
        GoalsMet => "goals_met",
        ReturnedHome => "returned_home",
        ReferredElsewhere => "referred_elsewhere",
        DeclinedFurtherSupport => "declined_further_support",
        LostContact => "lost_contact",
        MovedAway => "moved_away",
        Deceased => "deceased",
        NotAVictim => "not_a_victim",
        DuplicateRecord => "duplicate_record",
        Other => "other",
    }
}

text_enum! {
    /// Why a closed case was opened again.
    pub enum ReopenReason {
        NewInformation => "new_information",
        FurtherSupportNeeded => "further_support_needed",
        ClosedInError => "closed_in_error",
        Other => "other",
    }
}

text_enum! {
    /// What a task is for.
    pub enum TaskKind {
        Assessment => "assessment",
        CasePlan => "case_plan",
        FollowUp => "follow_up",
        Service => "service",
        SafetyCheck => "safety_check",
    }
}

text_enum! {
    /// Where a task stands: `open` until it is `done` or `cancelled` (closing the case cancels its
    /// open tasks).
    pub enum TaskStatus {
        Open => "open",
        Done => "done",
        Cancelled => "cancelled",
    }
}

text_enum! {
    /// The type of a support-plan goal (HTCDS `spl_Type`).
    pub enum SupportKind {
        Education => "education",
        Financial => "financial",
        Health => "health",
        LabourExploitationRehabilitation => "labour_exploitation_rehabilitation",
        Legal => "legal",
        Livelihood => "livelihood",
        RightsBasedTraining => "rights_based_training",
        SexualExploitationRehabilitation => "sexual_exploitation_rehabilitation",
        SocialCare => "social_care",
    }
}

text_enum! {
    /// Where a support-plan goal stands. HTCDS v2.0 gives the goal dates but no status picklist:
    /// these codes are Haven's.
    pub enum GoalStatus {
        Planned => "planned",
        InProgress => "in_progress",
        Achieved => "achieved",
        Discontinued => "discontinued",
    }
}

impl CaseStatus {
    /// Whether the case is closed (either way): it is opened again only with a reason.
    pub fn is_closed(self) -> bool {
        matches!(self, CaseStatus::Closed | CaseStatus::ClosedReferred)
    }
}

text_enum! {
    /// Whether the person is a victim of trafficking (HTCDS).
    pub enum TraffickingStatus {
        Possible => "possible",
        Actual => "actual",
        NotAVictim => "not_a_victim",
    }
}

text_enum! {
    /// Who identified the person.
    pub enum IdentifiedBy {
        Police => "police",
        Ngo => "ngo",
        CourtOrProsecution => "court_or_prosecution",
        Government => "government",
        SelfIdentified => "self",
        Other => "other",
    }
}

text_enum! {
    /// Gender as recorded by CTDC.
    pub enum Gender {
        Woman => "woman",
        Man => "man",
        TransOrNonConforming => "trans_or_non_conforming",
        Unknown => "unknown",
    }
}

text_enum! {
    /// Type of exploitation; `forced_criminality` covers scam compounds and online fraud.
    pub enum ExploitationType {
        SexualExploitation => "sexual_exploitation",
        ForcedLabour => "forced_labour",
        ForcedCriminality => "forced_criminality",
        ForcedBegging => "forced_begging",
        DomesticServitude => "domestic_servitude",
        ForcedMarriage => "forced_marriage",
        ChildLabour => "child_labour",
        ForcedMilitary => "forced_military",
        OrganRemoval => "organ_removal",
        ForcedAdoption => "forced_adoption",
        Surrogacy => "surrogacy",
        Other => "other",
    }
}

text_enum! {
    /// Type of sexual exploitation (HTCDS `vic_TypeOfSexExploitation`).
    pub enum SexExploitationType {
        Prostitution => "prostitution",
        Pornography => "pornography",
        /// Remote interactive services: webcam and live-streamed abuse.
        RemoteInteractiveServices => "remote_interactive_services",
        PrivateSexualServices => "private_sexual_services",
    }
}

text_enum! {
    /// A website or app used to recruit or to exploit (HTCDS `vic_RecruitmentWebsitesAndApps`,
    /// `vic_ExploitationWebsitesAndApps`).
    pub enum Platform {
        Facebook => "facebook",
        Instagram => "instagram",
        WhatsApp => "whatsapp",
        Telegram => "telegram",
        FacebookMessenger => "facebook_messenger",
        Viber => "viber",
        Snapchat => "snapchat",
        Line => "line",
        FourSale => "four_sale",
        WeChat => "wechat",
        Qq => "qq",
        QZone => "qzone",
        TikTok => "tiktok",
        Twitter => "twitter",
        Other => "other",
    }
}

text_enum! {
    /// What the perpetrators did in the trafficking process (HTCDS `per_RoleInProcess`); a case
    /// records the roles seen, not the people.
    pub enum PerpetratorRole {
        TravellingPartner => "travelling_partner",
        Transporter => "transporter",
        RecruiterOrIntermediary => "recruiter_or_intermediary",
        BrokerOrTravelAgent => "broker_or_travel_agent",
        TransferredIndividual => "transferred_individual",
        HarbouredIndividual => "harboured_individual",
        SoldIndividual => "sold_individual",
        BoughtIndividual => "bought_individual",
        ReceivedIndividual => "received_individual",
        ControlledIndividual => "controlled_individual",
        Smuggler => "smuggler",
        Abuser => "abuser",
        Kidnapper => "kidnapper",
        Exploiter => "exploiter",
        Other => "other",
    }
}

text_enum! {
    /// How consent was given (a consent change records it).
    pub enum ConsentMethod {
        Verbal => "verbal",
        WrittenForm => "written_form",
        /// Given by a parent or legal guardian (a minor, or an adult without capacity).
        Guardian => "guardian",
    }
}

text_enum! {
    /// How the person was recruited.
    pub enum RecruitmentMethod {
        DeceptiveJobOffer => "deceptive_job_offer",
        OnlineSocialNetwork => "online_social_network",
        OnlineAdvertisement => "online_advertisement",
        RecruitmentAgency => "recruitment_agency",
        PlaceOfBusiness => "place_of_business",
        EducationalInstitution => "educational_institution",
        Workplace => "workplace",
        TelevisionAdvertisement => "television_advertisement",
        NewspaperAdvertisement => "newspaper_advertisement",
        FamilyOrFriends => "family_or_friends",
        FriendsOrSocialEvents => "friends_or_social_events",
        PeerRecruitmentPyramid => "peer_recruitment_pyramid",
        IntimatePartner => "intimate_partner",
        Abduction => "abduction",
        Other => "other",
    }
}

text_enum! {
    /// Means of control (HTCDS's, CTDC's `uses_children`, and `other`).
    pub enum MeansOfControl {
        DebtBondage => "debt_bondage",
        TakesEarnings => "takes_earnings",
        WithholdsDocuments => "withholds_documents",
        RestrictsMovement => "restricts_movement",
        Threats => "threats",
        PhysicalAbuse => "physical_abuse",
        SexualAbuse => "sexual_abuse",
        PsychologicalAbuse => "psychological_abuse",
        FalsePromises => "false_promises",
        PsychoactiveSubstances => "psychoactive_substances",
        ExcessiveWorkingHours => "excessive_working_hours",
        WithholdsNecessities => "withholds_necessities",
        RestrictsMedicalCare => "restricts_medical_care",
        RestrictsFinancialAccess => "restricts_financial_access",
        ThreatOfLawEnforcement => "threat_of_law_enforcement",
        ThreatensFamily => "threatens_family",
        UsesChildren => "uses_children",
        Other => "other",
    }
}

text_enum! {
    /// The recruiter's relation to the person (CTDC).
    pub enum RecruiterRelation {
        IntimatePartner => "intimate_partner",
        Family => "family",
        FriendOrAcquaintance => "friend_or_acquaintance",
        Employer => "employer",
        RecruitmentAgent => "recruitment_agent",
        Stranger => "stranger",
        Other => "other",
        Unknown => "unknown",
    }
}

text_enum! {
    /// Migration status at identification.
    pub enum MigrantStatus {
        Citizen => "citizen",
        RegularMigrant => "regular_migrant",
        IrregularMigrant => "irregular_migrant",
        AsylumSeeker => "asylum_seeker",
        Refugee => "refugee",
        Stateless => "stateless",
        Returnee => "returnee",
        StrandedMigrant => "stranded_migrant",
        UnaccompaniedOrSeparatedChild => "unaccompanied_or_separated_child",
        InternallyDisplacedPerson => "internally_displaced_person",
        LabourMigrant => "labour_migrant",
        Deportee => "deportee",
        Unknown => "unknown",
    }
}

text_enum! {
    /// Stage of the journey a route leg belongs to.
    pub enum RouteLegKind {
        Recruitment => "recruitment",
        Transit => "transit",
        Exploitation => "exploitation",
    }
}

text_enum! {
    /// A service given or needed (assistance records and referrals).
    pub enum ServiceKind {
        Shelter => "shelter",
        Medical => "medical",
        Psychosocial => "psychosocial",
        Legal => "legal",
        Interpretation => "interpretation",
        Repatriation => "repatriation",
        FamilyReunification => "family_reunification",
        Financial => "financial",
        Education => "education",
        Livelihood => "livelihood",
        Other => "other",
    }
}

text_enum! {
    /// Where a referral stands.
    pub enum ReferralStatus {
        Pending => "pending",
        Accepted => "accepted",
        Declined => "declined",
        Completed => "completed",
        Cancelled => "cancelled",
    }
}

text_enum! {
    /// Why a case moves to another organisation (HTCDS `cas_ReasonForOutgoingReferral`).
    pub enum TransferReason {
        AdditionalServicesRequired => "additional_services_required",
        MigrationOrChangeOfLocation => "migration_or_change_of_location",
        Other => "other",
    }
}

text_enum! {
    /// Where a transfer stands: `pending` until the receiver accepts or declines it, or the sender
    /// cancels it.
    pub enum TransferStatus {
        Pending => "pending",
        Accepted => "accepted",
        Declined => "declined",
        Cancelled => "cancelled",
    }
}

text_enum! {
    /// How soon the receiving organisation should act.
    pub enum Urgency {
        Routine => "routine",
        Urgent => "urgent",
        Emergency => "emergency",
    }
}

text_enum! {
    /// Why a referral was declined (a code, not free text, so it can be shown and counted safely).
    pub enum DeclineReason {
        NoCapacity => "no_capacity",
        ServiceNotOffered => "service_not_offered",
        NotEligible => "not_eligible",
        VictimDeclined => "victim_declined",
        Duplicate => "duplicate",
        Other => "other",
    }
}
