//! One conformance suite, run against both backends: every test below runs
//! once on SQLite (a fresh data directory) and once on PostgreSQL (a fresh
//! database, created from `PATCHWELL_TEST_DATABASE_URL` and dropped after).
//! Without that variable the PostgreSQL half fails when `CI=true` and is
//! skipped, saying so, elsewhere.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use jiff::{SignedDuration, Timestamp};
use protocol::{
    AvailableUpdate, Cpu, HostFacts, Interface, Inventory, Manager, Neighbour, OsRelease, Package,
    PackageState, RebootStatus,
};
use sqlx::{Connection, Row};
use store::{
    ApiTokenStore, AuditStore, AuditVerdict, CatalogStore, DetectionStore, EnrollmentRefused,
    Error, FeedDocument, FeedRecord, HostAttributes, HostAuth, HostFilter, HostStore,
    InventoryStore, NewHost, NewToken, NewUser, PeopleStore, PlanStore, Store, TokenStore,
    UserChange, Why,
};
use store::{
    Assignment, NewRollout, NewRolloutHost, RolloutStore, RolloutUpdate, StepOutcome, StepRecord,
};

const T0: i64 = 1_780_000_000;

fn at(offset: i64) -> Timestamp {
    Timestamp::from_second(T0 + offset).unwrap()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn postgres_admin_url() -> Option<String> {
    match std::env::var("PATCHWELL_TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "PATCHWELL_TEST_DATABASE_URL is not set and CI=true: the PostgreSQL half must run"
            );
            eprintln!(
                "skipping PostgreSQL: set PATCHWELL_TEST_DATABASE_URL (cargo xtask ci sets it)"
            );
            None
        }
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix = &base[..base.rfind('/').map_or(base.len(), |i| i)];
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

async fn with_store<F, Fut>(backend: &str, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let unique = format!(
        "{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    match backend {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("patchwell-store-{unique}"));
            let store = Store::open_sqlite(&dir, at(0)).await.expect("open SQLite");
            test(store.clone()).await;
            store.close().await;
            std::fs::remove_dir_all(&dir).ok();
        }
        _ => {
            let Some(admin) = postgres_admin_url() else {
                return;
            };
            let name = format!("patchwell_test_{unique}");
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&admin)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create database");
            let store = Store::open_postgres(&with_database(&admin, &name), at(0))
                .await
                .expect("open PostgreSQL");
            test(store.clone()).await;
            store.close().await;
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .ok();
        }
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::with_store("sqlite", super::$name).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::with_store("postgres", super::$name).await })*
        }
    };
}

conformance!(
    enrollment_checks_and_counts_token_uses,
    simultaneous_enrollments_cannot_overspend_a_token,
    credentials_are_checked_and_revocation_refuses,
    an_inventory_reads_back_as_stored,
    package_versions_are_stored_once_for_the_fleet,
    hosts_below_a_version_follow_the_package_manager,
    an_invalid_version_refuses_the_whole_inventory,
    an_older_inventory_is_refused,
    hosts_are_filtered,
    fleet_summaries_count_hosts,
    devices_that_are_not_enrolled_are_listed,
    api_tokens_are_found_by_secret_hash,
    dynamic_groups_are_defined_replaced_and_deleted,
    simultaneous_inventories_from_many_hosts_all_succeed,
    a_feed_import_replaces_its_documents_whole,
    hosts_are_found_by_source_package_with_their_updates,
    users_sessions_and_the_procedure,
    plan_objects_are_stored_with_their_audit_entries,
    a_plan_object_is_replaced_only_from_the_body_it_was_decided_from,
    several_plan_objects_are_stored_at_once_each_audited,
    audit_verification_finds_the_first_altered_or_missing_entry,
    a_walk_from_a_checked_entry_finds_a_shortened_or_recomputed_log,
    detections_keep_the_first_time,
    a_fixed_finding_moves_to_the_remediations_once,
    a_delta_is_checked_and_stored_by_its_own_packages,
    an_inventory_resent_unchanged_changes_nothing,
    a_rollout_hands_out_jobs_and_records_steps,
    cloned_hosts_share_one_stored_package_list,
    a_host_that_drifts_from_its_image_moves_to_another_list,
    refused_deltas_leave_nothing_open_and_new_updates_are_stored,
    simultaneous_deltas_from_many_hosts_are_each_stored_or_refused_alone,
    versions_no_host_holds_are_pruned_and_stored_again_when_sent_again,
    a_host_may_have_at_most_its_limit_of_packages,
);

async fn simultaneous_inventories_from_many_hosts_all_succeed(store: Store) {
    let ids: Vec<String> = (0..24).map(|i| format!("h{i}")).collect();
    enrolled(&store, &ids.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let image: Vec<Package> = (0..400)
        .map(|i| package(&format!("pkg{i}"), &format!("1.{i}-1")))
        .collect();
    // Two rounds, so that later uploads meet hosts whose rows others just wrote.
    for round in 0..2 {
        let uploads: Vec<_> = ids
            .iter()
            .map(|id| {
                let (store, id, packages) = (store.clone(), id.clone(), image.clone());
                tokio::spawn(async move {
                    store
                        .store_inventory(
                            &id,
                            &inventory(100 + round, "12", packages),
                            "d",
                            at(100 + round),
                        )
                        .await
                })
            })
            .collect();
        for upload in uploads {
            upload
                .await
                .unwrap()
                .expect("concurrent inventories must not fail");
        }
    }
    for id in &ids {
        assert_eq!(store.packages(id).await.unwrap().len(), 400);
    }
}

async fn dynamic_groups_are_defined_replaced_and_deleted(store: Store) {
    use store::GroupStore;
    store
        .put_group(
            "eu-laptops",
            "tag = laptop and tag = eu",
            &Why::new("op", "test"),
            at(1),
        )
        .await
        .unwrap();
    store
        .put_group(
            "bookworm",
            "os = debian and os_version = 12",
            &Why::new("op", "test"),
            at(2),
        )
        .await
        .unwrap();
    store
        .put_group("eu-laptops", "tag = laptop", &Why::new("op", "test"), at(3))
        .await
        .unwrap();
    let groups = store.groups().await.unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["bookworm", "eu-laptops"]);
    let g = store.group("eu-laptops").await.unwrap().unwrap();
    assert_eq!(
        (g.query.as_str(), g.created_at, g.updated_at),
        ("tag = laptop", at(1), at(3))
    );
    assert!(store
        .delete_group("bookworm", &Why::new("op", "test"), at(4))
        .await
        .unwrap());
    assert!(!store
        .delete_group("bookworm", &Why::new("op", "test"), at(5))
        .await
        .unwrap());
    // Three definitions and one deletion were recorded, with before and after.
    let log = store.audit_entries(Some("groups/"), 0, 10).await.unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(
        log[2].event.before.as_deref(),
        Some(r#"{"query":"tag = laptop and tag = eu"}"#)
    );
    assert_eq!(log[3].event.after, None);
    // The head is the newest entry: the console reads the log back from it.
    assert_eq!(store.audit_head().await.unwrap(), log[3].seq);
    assert!(store.group("bookworm").await.unwrap().is_none());
}

async fn api_tokens_are_found_by_secret_hash(store: Store) {
    use store::NewApiToken;
    assert_eq!(store.api_token_count().await.unwrap(), 0);
    let why = Why::new("root", "create-api-token");
    let token = |id: &str, user: &str, hash: &[u8]| NewApiToken {
        id: id.to_owned(),
        name: format!("{id} for {user}"),
        secret_hash: hash.to_vec(),
        username: user.to_owned(),
        scopes: "read".to_owned(),
    };
    store
        .create_api_token(&token("a1", "alice", b"hash-1"), &why, at(5))
        .await
        .unwrap();
    store
        .create_api_token(&token("b1", "bob", b"hash-2"), &why, at(6))
        .await
        .unwrap();
    let found = store.api_token(b"hash-1").await.unwrap().unwrap();
    assert_eq!(
        (
            found.id.as_str(),
            found.username.as_deref(),
            found.scopes.as_str(),
            found.created_at
        ),
        ("a1", Some("alice"), "read", at(5))
    );
    assert!(store.api_token(b"hash-3").await.unwrap().is_none());
    assert_eq!(store.api_token_count().await.unwrap(), 2);
    let bobs = store.api_tokens(Some("bob")).await.unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].id, "b1");
    assert!(store.revoke_api_token("b1", &why, at(7)).await.unwrap());
    assert!(!store.revoke_api_token("b1", &why, at(8)).await.unwrap());
    assert!(store.api_token(b"hash-2").await.unwrap().is_none());
    // Two creations and one revocation were recorded.
    let log = store
        .audit_entries(Some("api-tokens/"), 0, 100)
        .await
        .unwrap();
    assert_eq!(log.len(), 3);
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Intact { entries: 3, .. }
    ));
}

async fn users_sessions_and_the_procedure(store: Store) {
    let why = Why::new("root", "create-user");
    let alice = NewUser {
        username: "alice".into(),
        role: "approver".into(),
        password_hash: "$argon2id$fake".into(),
        email: Some("alice@example.org".into()),
    };
    store.create_user(&alice, &why, at(1)).await.unwrap();
    assert!(matches!(
        store.create_user(&alice, &why, at(2)).await,
        Err(Error::Conflict(_))
    ));
    let (user, hash) = store.user("alice").await.unwrap().unwrap();
    assert_eq!(
        (user.role.as_str(), hash.as_str()),
        ("approver", "$argon2id$fake")
    );
    assert_eq!(store.user_count().await.unwrap(), 1);

    store
        .create_session(b"s1", "alice", at(100), at(3))
        .await
        .unwrap();
    assert_eq!(
        store.session_user(b"s1", at(50)).await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(
        store.session_user(b"s1", at(100)).await.unwrap(),
        None,
        "expired"
    );
    // Disabling a user ends their sessions.
    let change = UserChange {
        disabled: Some(true),
        ..UserChange::default()
    };
    let changed = store
        .change_user("alice", &change, &Why::new("root", "disable-user"), at(10))
        .await
        .unwrap();
    assert_eq!(changed.disabled_at, Some(at(10)));
    assert_eq!(store.session_user(b"s1", at(11)).await.unwrap(), None);
    assert!(matches!(
        store.change_user("nobody", &change, &why, at(12)).await,
        Err(Error::NotFound(_))
    ));
    let log = store
        .audit_entries(Some("users/alice"), 0, 10)
        .await
        .unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[1]
        .event
        .before
        .as_deref()
        .unwrap()
        .contains(r#""disabled":false"#));
    assert!(log[1]
        .event
        .after
        .as_deref()
        .unwrap()
        .contains(r#""disabled":true"#));
    assert!(!log[1].event.after.as_deref().unwrap().contains("argon2"));

    // The procedure: versions, and acknowledgement of the current one only.
    assert!(store.procedure().await.unwrap().is_none());
    assert!(matches!(
        store.acknowledge_procedure("alice", 1, at(20)).await,
        Err(Error::Conflict(_))
    ));
    let publish = Why::new("root", "publish-procedure");
    let v1 = store
        .publish_procedure("Patch within the SLA.", &publish, at(21))
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    store
        .acknowledge_procedure("alice", 1, at(22))
        .await
        .unwrap();
    store
        .acknowledge_procedure("alice", 1, at(23))
        .await
        .unwrap();
    let v2 = store
        .publish_procedure("Patch within the SLA; test first.", &publish, at(24))
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert!(matches!(
        store.acknowledge_procedure("alice", 1, at(25)).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        store.procedure_acks(1).await.unwrap(),
        vec![("alice".to_owned(), at(22))]
    );
    assert!(store.procedure_acks(2).await.unwrap().is_empty());
    assert_eq!(
        store.procedure().await.unwrap().unwrap().body,
        "Patch within the SLA; test first."
    );
}

async fn plan_objects_are_stored_with_their_audit_entries(store: Store) {
    let why = Why::new("alice", "exempt").because(Some("isolated VLAN".into()));
    let before = store
        .put_plan_object("exemptions", "web-1", r#"{"host":"web-1"}"#, &why, at(1))
        .await
        .unwrap();
    assert!(before.is_none());
    let before = store
        .put_plan_object(
            "exemptions",
            "web-1",
            r#"{"host":"web-1","until":2}"#,
            &why,
            at(2),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.body, r#"{"host":"web-1"}"#);
    let stored = store
        .plan_object("exemptions", "web-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.created_at, stored.updated_at), (at(1), at(2)));
    assert!(store
        .plan_object("policies", "web-1")
        .await
        .unwrap()
        .is_none());
    let deleted = store
        .delete_plan_object("exemptions", "web-1", &Why::new("bob", "delete"), at(3))
        .await
        .unwrap();
    assert!(deleted.is_some());
    assert!(store
        .delete_plan_object("exemptions", "web-1", &Why::new("bob", "delete"), at(4))
        .await
        .unwrap()
        .is_none());
    assert!(store.plan_objects("exemptions").await.unwrap().is_empty());
    let log = store.audit_entries(None, 0, 10).await.unwrap();
    let summary: Vec<_> = log
        .iter()
        .map(|e| {
            (
                e.seq,
                e.event.actor.as_str(),
                e.event.before.is_some(),
                e.event.after.is_some(),
                e.event.reason.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "alice", false, true, Some("isolated VLAN")),
            (2, "alice", true, true, Some("isolated VLAN")),
            (3, "bob", true, false, None),
        ]
    );
    assert_eq!(log[1].prev_hash, log[0].hash);
    assert_eq!(store.audit_entries(None, 2, 10).await.unwrap().len(), 1);
}

async fn several_plan_objects_are_stored_at_once_each_audited(store: Store) {
    let why = Why::new("alice", "approve").because(Some("lab".into()));
    store
        .put_plan_object(
            "approvals",
            "DSA-1",
            r#"{"verdict":"decline"}"#,
            &why,
            at(1),
        )
        .await
        .unwrap();
    let replaced = store
        .put_plan_objects(
            "approvals",
            &[
                ("DSA-1", r#"{"verdict":"approve"}"#, why.clone()),
                ("source:dpkg", r#"{"verdict":"approve"}"#, why.clone()),
            ],
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(replaced.len(), 2);
    assert_eq!(
        replaced[0].as_ref().map(|o| o.body.as_str()),
        Some(r#"{"verdict":"decline"}"#)
    );
    assert!(replaced[1].is_none());
    let names: Vec<String> = store
        .plan_objects("approvals")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["DSA-1", "source:dpkg"]);
    let log = store.audit_entries(None, 0, 10).await.unwrap();
    let subjects: Vec<(&str, Option<&str>)> = log
        .iter()
        .map(|e| (e.event.subject.as_str(), e.event.reason.as_deref()))
        .collect();
    assert_eq!(
        subjects,
        [
            ("approvals/DSA-1", Some("lab")),
            ("approvals/DSA-1", Some("lab")),
            ("approvals/source:dpkg", Some("lab")),
        ]
    );
}

async fn a_plan_object_is_replaced_only_from_the_body_it_was_decided_from(store: Store) {
    let why = Why::new("tom", "request-deferral");
    store
        .put_plan_object("deferrals", "d1", r#"{"state":"pending"}"#, &why, at(1))
        .await
        .unwrap();
    let grant = Why::new("carol", "grant-deferral");
    store
        .replace_plan_object(
            "deferrals",
            "d1",
            r#"{"state":"pending"}"#,
            r#"{"state":"granted"}"#,
            &grant,
            at(2),
        )
        .await
        .unwrap();
    // A second approver who read the pending request is refused, and the
    // first decision stands.
    let refuse = Why::new("dave", "refuse-deferral");
    let late = store
        .replace_plan_object(
            "deferrals",
            "d1",
            r#"{"state":"pending"}"#,
            r#"{"state":"refused"}"#,
            &refuse,
            at(3),
        )
        .await;
    assert!(matches!(late, Err(Error::Conflict(_))), "{late:?}");
    let gone = store
        .replace_plan_object("deferrals", "d2", "{}", "{}", &refuse, at(3))
        .await;
    assert!(matches!(gone, Err(Error::Conflict(_))), "{gone:?}");
    let stored = store.plan_object("deferrals", "d1").await.unwrap().unwrap();
    assert_eq!(stored.body, r#"{"state":"granted"}"#);
    assert_eq!(stored.updated_by, "carol");
    let log = store.audit_entries(None, 0, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].event.actor, "carol");
    assert_eq!(
        log[1].event.before.as_deref(),
        Some(r#"{"state":"pending"}"#)
    );
}

async fn audit_verification_finds_the_first_altered_or_missing_entry(store: Store) {
    let why = Why::new("alice", "approve");
    for i in 1..=5 {
        store
            .put_plan_object("approvals", &format!("DSA-{i}"), "{}", &why, at(i))
            .await
            .unwrap();
    }
    let AuditVerdict::Intact { entries, head } = store.verify_audit().await.unwrap() else {
        panic!("a fresh log is intact");
    };
    assert_eq!((entries, head.len()), (5, 64));
    let pool = store.pool();
    // An edit of entry 3's reason.
    sqlx::query("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 3")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        broken_at(&store).await,
        (3, "its contents do not match its hash")
    );
    sqlx::query("UPDATE audit_log SET reason = NULL WHERE seq = 3")
        .execute(pool)
        .await
        .unwrap();
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Intact { .. }
    ));
    // The newest entry removed: the head still counts it.
    sqlx::query("DELETE FROM audit_log WHERE seq = 5")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(broken_at(&store).await, (5, "are missing"));
    // An entry in the middle removed: that is the first problem now.
    sqlx::query("DELETE FROM audit_log WHERE seq = 2")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(broken_at(&store).await, (2, "is missing"));
}

async fn a_walk_from_a_checked_entry_finds_a_shortened_or_recomputed_log(store: Store) {
    let why = Why::new("alice", "approve");
    for i in 1..=6 {
        store
            .put_plan_object("approvals", &format!("DSA-{i}"), "{}", &why, at(i))
            .await
            .unwrap();
    }
    let keep: std::collections::BTreeSet<u64> = [2, 4, 6, 9].into();
    let walk = store.walk_audit(None, &keep).await.unwrap();
    let AuditVerdict::Intact { entries: 6, head } = walk.verdict else {
        panic!("a fresh log is intact: {walk:?}");
    };
    // Only the entries asked for that exist.
    assert_eq!(walk.hashes.keys().copied().collect::<Vec<_>>(), [2, 4, 6]);
    let (h4, h6) = (walk.hashes[&4].clone(), walk.hashes[&6].clone());
    assert_eq!(h6, head);
    // A walk from a checked entry goes on to the head.
    let walk = store.walk_audit(Some((4, &h4)), &[5].into()).await.unwrap();
    assert_eq!(
        walk.verdict,
        AuditVerdict::Intact {
            entries: 6,
            head: h6.clone()
        }
    );
    assert_eq!(walk.hashes.len(), 1);
    let pool = store.pool();

    // The tail cut and the head moved back: the chain alone still verifies,
    // but a walk from entry 6 finds it gone.
    sqlx::query("DELETE FROM audit_log WHERE seq > 4")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_head SET seq = 4, hash = $1 WHERE id = 1")
        .bind(&h4)
        .execute(pool)
        .await
        .unwrap();
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Intact { entries: 4, .. }
    ));
    match store
        .walk_audit(Some((6, &h6)), &keep)
        .await
        .unwrap()
        .verdict
    {
        AuditVerdict::Broken { seq: 6, problem } => {
            assert!(problem.contains("the log ends at 4"), "{problem}")
        }
        other => panic!("a shortened log verified: {other:?}"),
    }

    // Entry 3 rewritten and every hash after it worked out again: the
    // chain alone verifies, but entry 4's hash is no longer the one kept.
    let mut entries = store.audit_entries(None, 0, 10).await.unwrap();
    entries[2].event.reason = Some("nothing to see".into());
    let mut prev = entries[1].hash.clone();
    for e in &mut entries[2..] {
        e.prev_hash = prev;
        e.hash = e.computed_hash();
        prev = e.hash.clone();
        sqlx::query("UPDATE audit_log SET reason = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(e.event.reason.clone())
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .bind(e.seq as i64)
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(pool)
        .await
        .unwrap();
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Intact { entries: 4, .. }
    ));
    let walk = store.walk_audit(None, &keep).await.unwrap();
    assert_ne!(walk.hashes[&4], h4);
    match store
        .walk_audit(Some((4, &h4)), &keep)
        .await
        .unwrap()
        .verdict
    {
        AuditVerdict::Broken { seq: 4, problem } => {
            assert!(problem.contains("entry 4 was altered"), "{problem}")
        }
        other => panic!("a recomputed log verified: {other:?}"),
    }
}

async fn broken_at(store: &Store) -> (u64, &'static str) {
    match store.verify_audit().await.unwrap() {
        AuditVerdict::Broken { seq, problem } => {
            for known in [
                "its contents do not match its hash",
                "is missing",
                "are missing",
            ] {
                if problem.contains(known) {
                    return (seq, known);
                }
            }
            panic!("unexpected problem: {problem}")
        }
        AuditVerdict::Intact { .. } => panic!("an altered log verified"),
    }
}

async fn a_fixed_finding_moves_to_the_remediations_once(store: Store) {
    enrolled(&store, &["h1", "h2"]).await;
    store
        .record_detections(&[("h1", "DSA-1"), ("h2", "DSA-1"), ("h1", "DSA-2")], at(10))
        .await
        .unwrap();
    let fixed = |host: &str, advisory: &str, class: &str, due: i64| store::Fixed {
        host_id: host.into(),
        advisory_id: advisory.into(),
        class: class.into(),
        due: at(due),
    };
    // h1's DSA-1 and h2's DSA-1 fixed; an unknown pair is skipped.
    let moved = store
        .record_remediations(
            &[
                fixed("h1", "DSA-1", "critical", 40),
                fixed("h2", "DSA-1", "high", 20),
                fixed("h2", "DSA-9", "low", 99),
            ],
            at(30),
        )
        .await
        .unwrap();
    assert_eq!(moved, 2);
    // Recording the same fix again counts it once.
    let again = store
        .record_remediations(&[fixed("h1", "DSA-1", "critical", 40)], at(31))
        .await
        .unwrap();
    assert_eq!(again, 0);
    let all = store.all_detections().await.unwrap();
    assert_eq!(all.len(), 1, "only h1's DSA-2 is still open: {all:?}");
    let kept = store.remediations(at(0), at(100)).await.unwrap();
    assert_eq!(
        kept,
        vec![
            store::Remediation {
                host_id: "h1".into(),
                advisory_id: "DSA-1".into(),
                class: "critical".into(),
                first_seen: at(10),
                due: at(40),
                fixed_at: at(30),
            },
            store::Remediation {
                host_id: "h2".into(),
                advisory_id: "DSA-1".into(),
                class: "high".into(),
                first_seen: at(10),
                due: at(20),
                fixed_at: at(30),
            },
        ]
    );
    assert!(store
        .remediations(at(31), at(100))
        .await
        .unwrap()
        .is_empty());
    // A finding that comes back is detected afresh.
    store
        .record_detections(&[("h1", "DSA-1")], at(50))
        .await
        .unwrap();
    assert_eq!(
        store.detections("h1").await.unwrap().get("DSA-1"),
        Some(&at(50))
    );
}

async fn detections_keep_the_first_time(store: Store) {
    enrolled(&store, &["h1", "h2"]).await;
    store
        .record_detections(
            &[("h1", "DSA-1"), ("h2", "DSA-1"), ("ghost", "DSA-1")],
            at(10),
        )
        .await
        .unwrap();
    store
        .record_detections(&[("h1", "DSA-1"), ("h1", "DSA-2")], at(20))
        .await
        .unwrap();
    let h1 = store.detections("h1").await.unwrap();
    assert_eq!(h1.get("DSA-1"), Some(&at(10)));
    assert_eq!(h1.get("DSA-2"), Some(&at(20)));
    assert!(store.detections("ghost").await.unwrap().is_empty());
    let all = store.all_detections().await.unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all.get(&("h2".into(), "DSA-1".into())), Some(&at(10)));
    assert_eq!(all.get(&("h1".into(), "DSA-2".into())), Some(&at(20)));
    // Postures by day: a day written again keeps the later writing.
    store
        .record_posture("2026-10-31", r#"{"hosts":1}"#, at(1))
        .await
        .unwrap();
    store
        .record_posture("2026-11-01", r#"{"hosts":2}"#, at(2))
        .await
        .unwrap();
    store
        .record_posture("2026-11-01", r#"{"hosts":3}"#, at(3))
        .await
        .unwrap();
    store
        .record_posture("2026-12-01", r#"{"hosts":4}"#, at(4))
        .await
        .unwrap();
    assert_eq!(
        store.postures("2026-11-01", "2026-11-30").await.unwrap(),
        [("2026-11-01".to_owned(), r#"{"hosts":3}"#.to_owned())]
    );
}

fn token(id: &str, secret: &[u8], max_uses: u32, expires: i64) -> NewToken {
    NewToken {
        id: id.into(),
        secret_hash: secret.to_vec(),
        created_at: at(0),
        expires_at: at(expires),
        max_uses,
        target_group: Some("laptops".into()),
    }
}

fn host(id: &str) -> NewHost {
    NewHost {
        id: id.into(),
        credential_hash: format!("cred-{id}").into_bytes(),
        hostname: format!("{id}.example"),
    }
}

async fn enrolled(store: &Store, ids: &[&str]) {
    store
        .create_token(
            &token("t-fixture", b"fixture-secret", 1000, 86_400),
            &Why::new("op", "create-token"),
        )
        .await
        .unwrap();
    for id in ids {
        store
            .enroll(b"fixture-secret", &host(id), at(1))
            .await
            .unwrap();
    }
}

fn package(name: &str, version: &str) -> Package {
    Package {
        manager: Manager::Dpkg,
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source: Some(name.into()),
        source_version: Some(version.into()),
        state: PackageState::Installed,
        held: false,
    }
}

fn inventory(collected: i64, os_version: &str, packages: Vec<Package>) -> Inventory {
    Inventory {
        schema: protocol::INVENTORY_SCHEMA,
        collected_at: at(collected),
        host: HostFacts {
            hostname: "web1".into(),
            machine_id: Some("0123456789abcdef".into()),
            kernel: "6.1.0-18-amd64".into(),
            arch: "amd64".into(),
            cpu: Cpu {
                model: "EPYC".into(),
                count: 2,
            },
            model: None,
            memory_bytes: 1 << 30,
            disks: vec![],
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: Some("02:00:00:00:00:01".into()),
                addresses: vec!["192.0.2.10/24".into()],
            }],
            uptime_seconds: 100,
            boot_time: at(-100),
        },
        os: OsRelease {
            id: "debian".into(),
            version_id: Some(os_version.into()),
            codename: Some("bookworm".into()),
            pretty_name: None,
            id_like: vec![],
        },
        reboot: RebootStatus {
            required: false,
            packages: vec![],
        },
        packages,
        updates: vec![],
        neighbours: vec![],
        warnings: vec![],
    }
}

async fn enrollment_checks_and_counts_token_uses(store: Store) {
    store
        .create_token(
            &token("t1", b"secret-1", 2, 3600),
            &Why::new("op", "create-token"),
        )
        .await
        .unwrap();
    store
        .enroll(b"secret-1", &host("h1"), at(10))
        .await
        .unwrap();
    store
        .enroll(b"secret-1", &host("h2"), at(20))
        .await
        .unwrap();
    let refused = |r: store::Result<()>| match r {
        Err(Error::Enrollment(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refused(store.enroll(b"secret-1", &host("h3"), at(30)).await),
        EnrollmentRefused::UsedUp
    );
    assert_eq!(
        refused(store.enroll(b"no-such", &host("h3"), at(30)).await),
        EnrollmentRefused::UnknownToken
    );

    store
        .create_token(
            &token("t2", b"secret-2", 5, 3600),
            &Why::new("op", "create-token"),
        )
        .await
        .unwrap();
    assert_eq!(
        refused(store.enroll(b"secret-2", &host("h3"), at(3600)).await),
        EnrollmentRefused::Expired
    );
    assert!(store
        .revoke_token("t2", &Why::new("op", "revoke-token"), at(40))
        .await
        .unwrap());
    assert!(!store
        .revoke_token("nope", &Why::new("op", "revoke-token"), at(40))
        .await
        .unwrap());
    assert_eq!(
        refused(store.enroll(b"secret-2", &host("h3"), at(50)).await),
        EnrollmentRefused::Revoked
    );

    let tokens = store.list_tokens().await.unwrap();
    let t1 = tokens.iter().find(|t| t.id == "t1").unwrap();
    assert_eq!((t1.uses, t1.max_uses, t1.revoked_at), (2, 2, None));
    let t2 = tokens.iter().find(|t| t.id == "t2").unwrap();
    assert_eq!((t2.uses, t2.revoked_at), (0, Some(at(40))));

    let h1 = store.host("h1").await.unwrap().unwrap();
    assert_eq!(h1.hostname, "h1.example");
    assert_eq!(
        h1.attributes.group.as_deref(),
        Some("laptops"),
        "the token's group"
    );
    assert_eq!((h1.enrolled_at, h1.last_seen), (at(10), at(10)));
    assert!(store.host("h3").await.unwrap().is_none());

    // A second revocation changes nothing and is not recorded again.
    assert!(store
        .revoke_token("t2", &Why::new("op", "revoke-token"), at(60))
        .await
        .unwrap());
    // The tokens' creation and revocation and each enrollment are in the
    // log; a refused enrollment is not. An enrollment's actor is the host
    // itself, and the host name it gave is labelled as its own word.
    let log = store.audit_entries(None, 0, 100).await.unwrap();
    let summary: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| {
            (
                e.event.actor.as_str(),
                e.event.action.as_str(),
                e.event.subject.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("op", "create-token", "enrollment-tokens/t1"),
            ("host:h1", "enroll", "hosts/h1"),
            ("host:h2", "enroll", "hosts/h2"),
            ("op", "create-token", "enrollment-tokens/t2"),
            ("op", "revoke-token", "enrollment-tokens/t2"),
        ]
    );
    let created: serde_json::Value =
        serde_json::from_str(log[0].event.after.as_deref().unwrap()).unwrap();
    // Its terms, and nothing of its secret.
    let mut keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["expires_at", "group", "id", "max_uses"]);
    assert_eq!(created["max_uses"], 2);
    assert_eq!(created["group"], "laptops");
    let enrolled: serde_json::Value =
        serde_json::from_str(log[1].event.after.as_deref().unwrap()).unwrap();
    assert_eq!(enrolled["hostname_reported_by_host"], "h1.example");
    assert_eq!(enrolled["token"], "t1");
    assert_eq!(log[4].at, at(40));
}

async fn simultaneous_enrollments_cannot_overspend_a_token(store: Store) {
    store
        .create_token(
            &token("t", b"race", 3, 3600),
            &Why::new("op", "create-token"),
        )
        .await
        .unwrap();
    let attempts = (0..10).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.enroll(b"race", &host(&format!("r{i}")), at(5)).await })
    });
    let mut ok = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(()) => ok += 1,
            Err(Error::Enrollment(EnrollmentRefused::UsedUp)) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 3);
    assert_eq!(store.list_tokens().await.unwrap()[0].uses, 3);
}

async fn credentials_are_checked_and_revocation_refuses(store: Store) {
    enrolled(&store, &["h1", "h2"]).await;
    assert_eq!(
        store.authenticate("h1", b"cred-h1").await.unwrap(),
        HostAuth::Active
    );
    // Another host's credential is no credential at all.
    assert_eq!(
        store.authenticate("h1", b"cred-h2").await.unwrap(),
        HostAuth::Unknown
    );
    assert_eq!(
        store.authenticate("nobody", b"cred-h1").await.unwrap(),
        HostAuth::Unknown
    );
    store.touch("h1", at(500)).await.unwrap();
    store.touch("h1", at(400)).await.unwrap();
    assert_eq!(
        store.host("h1").await.unwrap().unwrap().last_seen,
        at(500),
        "last seen never goes back"
    );
    assert!(store
        .revoke_host("h1", &Why::new("op", "test"), at(600))
        .await
        .unwrap());
    assert_eq!(
        store.authenticate("h1", b"cred-h1").await.unwrap(),
        HostAuth::Revoked
    );
    assert_eq!(
        store.authenticate("h2", b"cred-h2").await.unwrap(),
        HostAuth::Active
    );
}

async fn an_inventory_reads_back_as_stored(store: Store) {
    enrolled(&store, &["h1"]).await;
    let mut binnmu = package("libfoo1", "1.0.9-2+b6");
    binnmu.source = Some("foo".into());
    binnmu.source_version = Some("1.0.9-2".into());
    let mut removed = package("cron", "3.0pl1-162");
    removed.state = PackageState::ConfigFiles;
    let mut held = package("linux-image-amd64", "6.1.76-1");
    held.held = true;
    let mut inv = inventory(
        100,
        "12",
        vec![
            binnmu,
            removed,
            held,
            package("openssl", "3.0.11-1~deb12u2"),
        ],
    );
    inv.reboot = RebootStatus {
        required: true,
        packages: vec!["libc6".into()],
    };
    inv.updates = vec![AvailableUpdate {
        manager: Manager::Dpkg,
        name: "openssl".into(),
        arch: "amd64".into(),
        installed: "3.0.11-1~deb12u2".into(),
        candidate: "3.0.15-1~deb12u1".into(),
        suite: Some("oldstable-security".into()),
        codename: Some("bookworm-security".into()),
        origin: Some("Debian".into()),
        security: true,
    }];
    inv.neighbours = vec![Neighbour {
        address: "192.0.2.1".into(),
        mac: Some("02:fc:00:00:00:05".into()),
        interface: "eth0".into(),
        state: "REACHABLE".into(),
    }];
    store
        .store_inventory("h1", &inv, "digest-1", at(101))
        .await
        .unwrap();

    let mut expected = inv.packages.clone();
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(store.packages("h1").await.unwrap(), expected);
    let h = store.host("h1").await.unwrap().unwrap();
    assert_eq!(h.hostname, "web1");
    assert_eq!(
        (
            h.os_id.as_deref(),
            h.os_version.as_deref(),
            h.os_codename.as_deref()
        ),
        (Some("debian"), Some("12"), Some("bookworm"))
    );
    assert_eq!(h.kernel.as_deref(), Some("6.1.0-18-amd64"));
    assert!(h.reboot_required);
    assert_eq!(h.facts.as_ref(), Some(&inv.host));
    assert_eq!(h.inventory_digest.as_deref(), Some("digest-1"));
    assert_eq!(h.inventory_collected_at, Some(at(100)));
    assert_eq!(h.last_seen, at(101));
    assert_eq!(store.neighbours("h1").await.unwrap(), inv.neighbours);

    // A second inventory replaces the first.
    let next = inventory(200, "12", vec![package("openssl", "3.0.15-1~deb12u1")]);
    store
        .store_inventory("h1", &next, "digest-2", at(201))
        .await
        .unwrap();
    assert_eq!(store.packages("h1").await.unwrap(), next.packages);
    assert!(store.neighbours("h1").await.unwrap().is_empty());
}

/// A host's packages as the store gives them back: sources filled, by name.
fn as_stored(mut packages: Vec<Package>) -> Vec<Package> {
    packages.iter_mut().for_each(Package::fill_source);
    packages.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    packages
}

async fn a_delta_is_checked_and_stored_by_its_own_packages(store: Store) {
    enrolled(&store, &["h1"]).await;
    let mut binnmu = package("libfoo1", "1.0.9-2+b6");
    binnmu.source = Some("foo".into());
    binnmu.source_version = Some("1.0.9-2".into());
    let first = inventory(
        100,
        "12",
        vec![
            package("bash", "5.2.15-2+b2"),
            package("cron", "3.0pl1-162"),
            binnmu,
            package("openssl", "3.0.11-1~deb12u2"),
        ],
    );
    store
        .store_inventory("h1", &first, &first.digest(), at(100))
        .await
        .unwrap();

    // openssl upgraded, cron purged to its conffiles, libfoo1 removed,
    // bash held, zlib1g new.
    let mut next = first.clone();
    next.collected_at = at(200);
    next.packages[0].held = true;
    next.packages[1].state = PackageState::ConfigFiles;
    next.packages.remove(2);
    next.packages[2].version = "3.0.15-1~deb12u1".into();
    next.packages[2].source_version = Some("3.0.15-1~deb12u1".into());
    next.packages.push(package("zlib1g", "1:1.2.13.dfsg-1"));
    let delta = next.delta_from(&first);
    let stored = store
        .store_inventory_delta("h1", &delta, at(201))
        .await
        .unwrap();
    assert!(!stored.os_changed);
    let mut replaced: Vec<String> = stored
        .replaced
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect();
    replaced.sort();
    assert_eq!(
        replaced,
        [
            "bash 5.2.15-2+b2",
            "cron 3.0pl1-162",
            "libfoo1 1.0.9-2+b6",
            "openssl 3.0.11-1~deb12u2"
        ]
    );
    assert_eq!(
        store.packages("h1").await.unwrap(),
        as_stored(next.packages.clone())
    );
    let h = store.host("h1").await.unwrap().unwrap();
    assert_eq!(h.inventory_digest, Some(next.digest()));
    assert_eq!(h.inventory_collected_at, Some(at(200)));

    // Each refusal stores nothing.
    let mut later = next.clone();
    later.collected_at = at(300);
    later.packages.pop();
    // A delta from an inventory that is no longer the stored one.
    let stale = later.delta_from(&first);
    match store.store_inventory_delta("h1", &stale, at(301)).await {
        Err(Error::Conflict(why)) => assert!(why.contains("base"), "{why}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    still(&store, &next).await;
    // A delta whose result is not what the agent says it has.
    let mut forged = later.delta_from(&next);
    forged.packages_removed.clear();
    match store.store_inventory_delta("h1", &forged, at(301)).await {
        Err(Error::Conflict(why)) => assert!(why.contains("does not reproduce"), "{why}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    still(&store, &next).await;
    // An invalid version.
    let mut bad = later.clone();
    bad.packages[0].version = "1.0_1".into();
    match store
        .store_inventory_delta("h1", &bad.delta_from(&next), at(301))
        .await
    {
        Err(Error::Invalid(why)) => assert!(why.contains("bash") && why.contains("1.0_1"), "{why}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    still(&store, &next).await;
    // An older one.
    let mut older = later.clone();
    older.collected_at = at(150);
    match store
        .store_inventory_delta("h1", &older.delta_from(&next), at(301))
        .await
    {
        Err(Error::Conflict(why)) => assert!(why.contains("older"), "{why}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    still(&store, &next).await;
    assert!(matches!(
        store
            .store_inventory_delta("nobody", &later.delta_from(&next), at(301))
            .await,
        Err(Error::NotFound(_))
    ));

    // The right one, which moves the host to Debian 13.
    later.os.version_id = Some("13".into());
    let stored = store
        .store_inventory_delta("h1", &later.delta_from(&next), at(301))
        .await
        .unwrap();
    assert!(stored.os_changed);
    assert_eq!(
        store.packages("h1").await.unwrap(),
        as_stored(later.packages.clone())
    );
    let h = store.host("h1").await.unwrap().unwrap();
    assert_eq!(h.os_version.as_deref(), Some("13"));
    assert_eq!(h.inventory_digest, Some(later.digest()));
}

/// Asserts that h1 still holds `inventory`.
async fn still(store: &Store, inventory: &Inventory) {
    assert_eq!(
        store.packages("h1").await.unwrap(),
        as_stored(inventory.packages.clone())
    );
    let h = store.host("h1").await.unwrap().unwrap();
    assert_eq!(h.inventory_digest, Some(inventory.digest()));
}

async fn an_inventory_resent_unchanged_changes_nothing(store: Store) {
    enrolled(&store, &["h1"]).await;
    let mut first = inventory(100, "12", vec![package("openssl", "3.0.11-1")]);
    first.neighbours = vec![Neighbour {
        address: "192.0.2.1".into(),
        mac: Some("02:fc:00:00:00:05".into()),
        interface: "eth0".into(),
        state: "REACHABLE".into(),
    }];
    assert!(store
        .store_inventory("h1", &first, &first.digest(), at(100))
        .await
        .unwrap());
    // The same packages later, with the neighbour gone stale: the host's
    // row and its neighbour follow, its packages are left as they are.
    let mut again = first.clone();
    again.collected_at = at(200);
    again.host.uptime_seconds = 200;
    again.neighbours[0].state = "STALE".into();
    assert!(!store
        .store_inventory("h1", &again, &again.digest(), at(200))
        .await
        .unwrap());
    let h = store.host("h1").await.unwrap().unwrap();
    assert_eq!(h.inventory_collected_at, Some(at(200)));
    assert_eq!(h.facts.map(|f| f.uptime_seconds), Some(200));
    assert_eq!(store.neighbours("h1").await.unwrap(), again.neighbours);
    assert_eq!(
        store.packages("h1").await.unwrap(),
        as_stored(first.packages.clone())
    );
    // A changed state is a change.
    again.collected_at = at(300);
    again.packages[0].held = true;
    assert!(store
        .store_inventory("h1", &again, &again.digest(), at(300))
        .await
        .unwrap());
    assert!(store.packages("h1").await.unwrap()[0].held);
}

async fn package_versions_are_stored_once_for_the_fleet(store: Store) {
    let ids: Vec<String> = (0..20).map(|i| format!("h{i}")).collect();
    enrolled(&store, &ids.iter().map(String::as_str).collect::<Vec<_>>()).await;
    // Twenty hosts cloned from one image, one of them with one newer package.
    let image: Vec<Package> = (0..300)
        .map(|i| package(&format!("pkg{i}"), &format!("1.{i}-1")))
        .collect();
    for (n, id) in ids.iter().enumerate() {
        let mut packages = image.clone();
        if n == 0 {
            packages[0] = package("pkg0", "1.0-2");
        }
        store
            .store_inventory(id, &inventory(100, "12", packages), "d", at(100))
            .await
            .unwrap();
    }
    assert_eq!(store.package_version_count().await.unwrap(), 301);
    assert_eq!(store.packages("h7").await.unwrap().len(), 300);
}

async fn hosts_below_a_version_follow_the_package_manager(store: Store) {
    enrolled(&store, &["a", "b", "c", "d", "e"]).await;
    let with = |v: &str| vec![package("openssl", v), package("bash", "5.2.15-2+b8")];
    store
        .store_inventory(
            "a",
            &inventory(1, "12", with("3.0.11-1~deb12u1")),
            "d",
            at(2),
        )
        .await
        .unwrap();
    store
        .store_inventory(
            "b",
            &inventory(1, "12", with("3.0.11-1~deb12u2")),
            "d",
            at(2),
        )
        .await
        .unwrap();
    store
        .store_inventory("c", &inventory(1, "12", with("3.0.9-1")), "d", at(2))
        .await
        .unwrap();
    let mut removed = package("openssl", "3.0.2-1");
    removed.state = PackageState::ConfigFiles;
    store
        .store_inventory("d", &inventory(1, "12", vec![removed]), "d", at(2))
        .await
        .unwrap();
    store
        .store_inventory("e", &inventory(1, "12", with("3.0.1-1")), "d", at(2))
        .await
        .unwrap();
    store
        .revoke_host("e", &Why::new("op", "test"), at(3))
        .await
        .unwrap();

    let below = store
        .hosts_with_package_below(Manager::Dpkg, "openssl", "3.0.11-1~deb12u2")
        .await
        .unwrap();
    let found: Vec<(&str, &str)> = below
        .iter()
        .map(|h| (h.host_id.as_str(), h.version.as_str()))
        .collect();
    // 3.0.9 < 3.0.11 as numbers, ~deb12u1 < ~deb12u2; removed and revoked hosts do not count.
    assert_eq!(found, [("a", "3.0.11-1~deb12u1"), ("c", "3.0.9-1")]);
    let below = store
        .hosts_with_package_below(Manager::Dpkg, "openssl", "3.0.11-1")
        .await
        .unwrap();
    assert_eq!(
        below.len(),
        3,
        "a ~ version sorts before the release: {below:?}"
    );
    // binNMU +b8 against the plain revision.
    assert_eq!(
        store
            .hosts_with_package_below(Manager::Dpkg, "bash", "5.2.15-2+b9")
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(store
        .hosts_with_package_below(Manager::Dpkg, "bash", "5.2.15-2")
        .await
        .unwrap()
        .is_empty());
    match store
        .hosts_with_package_below(Manager::Dpkg, "bash", "1:")
        .await
    {
        Err(Error::Invalid(why)) => assert!(why.contains("nothing after colon"), "{why}"),
        other => panic!("expected an invalid version error, got {other:?}"),
    }
}

async fn an_invalid_version_refuses_the_whole_inventory(store: Store) {
    enrolled(&store, &["h1"]).await;
    let good = inventory(100, "12", vec![package("openssl", "3.0.11-1")]);
    store
        .store_inventory("h1", &good, "d1", at(100))
        .await
        .unwrap();
    let bad = inventory(
        200,
        "13",
        vec![package("openssl", "3.0.15-1"), package("broken", "1.0_1")],
    );
    match store.store_inventory("h1", &bad, "d2", at(200)).await {
        Err(Error::Invalid(why)) => {
            assert!(
                why.contains("broken")
                    && why.contains("1.0_1")
                    && why.contains("invalid character"),
                "{why}"
            )
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // Nothing of it was stored.
    assert_eq!(store.packages("h1").await.unwrap(), good.packages);
    let h = store.host("h1").await.unwrap().unwrap();
    assert_eq!(
        (h.os_version.as_deref(), h.inventory_digest.as_deref()),
        (Some("12"), Some("d1"))
    );

    let control = inventory(300, "12", vec![package("bad\u{1d}name", "1")]);
    match store.store_inventory("h1", &control, "d3", at(300)).await {
        Err(Error::Invalid(why)) => assert!(why.contains("control character"), "{why}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    let twice = inventory(300, "12", vec![package("a", "1"), package("a", "1")]);
    assert!(matches!(
        store.store_inventory("h1", &twice, "d3", at(300)).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        store.store_inventory("nobody", &good, "d", at(300)).await,
        Err(Error::NotFound(_))
    ));
}

async fn an_older_inventory_is_refused(store: Store) {
    enrolled(&store, &["h1"]).await;
    let newer = inventory(500, "12", vec![package("openssl", "3.0.15-1")]);
    store
        .store_inventory("h1", &newer, "new", at(501))
        .await
        .unwrap();
    let older = inventory(400, "12", vec![package("openssl", "3.0.11-1")]);
    match store.store_inventory("h1", &older, "old", at(502)).await {
        Err(Error::Conflict(why)) => assert!(why.contains("older"), "{why}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.packages("h1").await.unwrap(), newer.packages);
}

async fn hosts_are_filtered(store: Store) {
    enrolled(&store, &["a", "b", "c", "d"]).await;
    let mut inv_a = inventory(1, "12", vec![]);
    inv_a.reboot.required = true;
    store
        .store_inventory("a", &inv_a, "d", at(2))
        .await
        .unwrap();
    store
        .store_inventory("b", &inventory(1, "11", vec![]), "d", at(2))
        .await
        .unwrap();
    store
        .store_inventory("c", &inventory(1, "12", vec![]), "d", at(2))
        .await
        .unwrap();
    store
        .set_attributes(
            "a",
            &HostAttributes {
                group: Some("servers".into()),
                criticality: Some("high".into()),
                owner: Some("ops".into()),
                department: Some("IT".into()),
                tags: vec!["laptop".into(), "eu".into(), "laptop".into()],
            },
            &Why::new("op", "set-attributes"),
            at(2),
        )
        .await
        .unwrap();
    store.touch("c", at(30 * 86_400)).await.unwrap();
    store
        .revoke_host("d", &Why::new("op", "test"), at(3))
        .await
        .unwrap();

    let now = at(30 * 86_400);
    let week = SignedDuration::from_hours(24 * 7);
    let ids = |hosts: Vec<store::HostRecord>| hosts.into_iter().map(|h| h.id).collect::<Vec<_>>();
    let list = |f: HostFilter| {
        let store = store.clone();
        async move { ids(store.list_hosts(&f, now, week).await.unwrap()) }
    };
    assert_eq!(
        list(HostFilter::default()).await.len(),
        3,
        "revoked hosts are left out"
    );
    assert_eq!(
        list(HostFilter {
            include_revoked: true,
            ..Default::default()
        })
        .await
        .len(),
        4
    );
    assert_eq!(
        list(HostFilter {
            os_version: Some("11".into()),
            ..Default::default()
        })
        .await,
        ["b"]
    );
    assert_eq!(
        list(HostFilter {
            os_id: Some("ubuntu".into()),
            ..Default::default()
        })
        .await
        .len(),
        0
    );
    assert_eq!(
        list(HostFilter {
            tag: Some("laptop".into()),
            ..Default::default()
        })
        .await,
        ["a"]
    );
    assert_eq!(
        list(HostFilter {
            group: Some("servers".into()),
            ..Default::default()
        })
        .await,
        ["a"]
    );
    assert_eq!(
        list(HostFilter {
            reboot_required: Some(true),
            ..Default::default()
        })
        .await,
        ["a"]
    );
    assert_eq!(
        list(HostFilter {
            stale: Some(false),
            ..Default::default()
        })
        .await,
        ["c"]
    );
    let mut stale = list(HostFilter {
        stale: Some(true),
        ..Default::default()
    })
    .await;
    stale.sort();
    assert_eq!(stale, ["a", "b"]);
    let mut picked = list(HostFilter {
        ids: Some(vec!["c".into(), "a".into(), "d".into(), "nobody".into()]),
        ..Default::default()
    })
    .await;
    picked.sort();
    assert_eq!(
        picked,
        ["a", "c"],
        "by id; d was revoked, nobody is no host"
    );
    // Names, by name, revoked hosts left out.
    let names = store.host_names().await.unwrap();
    let listed: Vec<(String, String)> = store
        .list_hosts(&HostFilter::default(), now, week)
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.id, h.hostname))
        .collect();
    assert_eq!(names, listed);
    assert!(names.iter().all(|(id, _)| id != "d"), "d was revoked");
    // Facts are read only when asked for.
    let facts_of = |facts: bool| {
        let store = store.clone();
        async move {
            let f = HostFilter {
                facts,
                ..Default::default()
            };
            let hosts = store.list_hosts(&f, now, week).await.unwrap();
            hosts.into_iter().find(|h| h.id == "a").unwrap().facts
        }
    };
    assert_eq!(facts_of(false).await, None);
    assert_eq!(
        facts_of(true).await,
        store.host("a").await.unwrap().unwrap().facts
    );
    assert!(facts_of(true).await.is_some(), "host a reported its facts");

    let a = store.host("a").await.unwrap().unwrap();
    assert_eq!(a.attributes.tags, ["eu", "laptop"]);
    assert_eq!(a.attributes.criticality.as_deref(), Some("high"));
    assert!(a.is_stale(now, week));
    assert!(matches!(
        store
            .set_attributes(
                "zz",
                &HostAttributes::default(),
                &Why::new("op", "test"),
                at(2)
            )
            .await,
        Err(Error::NotFound(_))
    ));
}

async fn fleet_summaries_count_hosts(store: Store) {
    enrolled(&store, &["a", "b", "c"]).await;
    store
        .store_inventory(
            "a",
            &inventory(1, "12", vec![package("bash", "5.2.15-2+b8")]),
            "d",
            at(2),
        )
        .await
        .unwrap();
    store
        .store_inventory(
            "b",
            &inventory(1, "12", vec![package("bash", "5.2.15-2")]),
            "d",
            at(2),
        )
        .await
        .unwrap();
    store
        .store_inventory(
            "c",
            &inventory(1, "11", vec![package("bash", "5.1-2+deb11u1")]),
            "d",
            at(2),
        )
        .await
        .unwrap();
    let os = store.hosts_per_os_release().await.unwrap();
    let os: Vec<(&str, u64)> = os.iter().map(|c| (c.value.as_str(), c.hosts)).collect();
    assert_eq!(os, [("debian 12", 2), ("debian 11", 1)]);
    let versions = store
        .hosts_per_package_version(Manager::Dpkg, "bash")
        .await
        .unwrap();
    let versions: Vec<(&str, u64)> = versions
        .iter()
        .map(|c| (c.value.as_str(), c.hosts))
        .collect();
    assert_eq!(
        versions,
        [("5.1-2+deb11u1", 1), ("5.2.15-2", 1), ("5.2.15-2+b8", 1)]
    );
}

async fn devices_that_are_not_enrolled_are_listed(store: Store) {
    enrolled(&store, &["a", "b"]).await;
    let mut inv_a = inventory(1, "12", vec![]);
    inv_a.neighbours = vec![
        Neighbour {
            address: "192.0.2.1".into(),
            mac: Some("02:FC:00:00:00:05".into()),
            interface: "eth0".into(),
            state: "REACHABLE".into(),
        },
        Neighbour {
            address: "192.0.2.20".into(),
            mac: Some("02:00:00:00:00:02".into()),
            interface: "eth0".into(),
            state: "STALE".into(),
        },
        Neighbour {
            address: "fd00::1".into(),
            mac: None,
            interface: "eth0".into(),
            state: "FAILED".into(),
        },
    ];
    store
        .store_inventory("a", &inv_a, "d", at(2))
        .await
        .unwrap();
    let mut inv_b = inventory(1, "12", vec![]);
    inv_b.host.hostname = "web2".into();
    inv_b.host.interfaces[0].mac = Some("02:00:00:00:00:02".into());
    inv_b.neighbours = vec![Neighbour {
        address: "192.0.2.1".into(),
        mac: Some("02:fc:00:00:00:05".into()),
        interface: "eth0".into(),
        state: "STALE".into(),
    }];
    store
        .store_inventory("b", &inv_b, "d", at(2))
        .await
        .unwrap();
    let devices = store.unmanaged_devices().await.unwrap();
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!(devices[0].mac, "02:fc:00:00:00:05");
    assert_eq!(devices[0].addresses, ["192.0.2.1"]);
    assert_eq!(devices[0].seen_by, ["web1", "web2"]);
}

/// Opening a database twice applies nothing twice and keeps the data; a
/// database written by a newer Patchwell is refused, not misread.
async fn reopen_then_refuse_newer(
    open: impl Fn() -> std::pin::Pin<Box<dyn Future<Output = store::Result<Store>>>>,
    url: String,
) {
    let first = open().await.expect("first open");
    first
        .create_token(&token("t", b"s", 1, 10), &Why::new("op", "create-token"))
        .await
        .unwrap();
    first.close().await;
    let second = open().await.expect("second open");
    assert_eq!(second.list_tokens().await.unwrap().len(), 1);
    second.close().await;
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    match open().await {
        Err(Error::SchemaTooNew { found: 99, .. }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn sqlite_migrations_run_once_and_refuse_a_newer_schema() {
    sqlx::any::install_default_drivers();
    let dir = std::env::temp_dir().join(format!("patchwell-migrate-{}", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", dir.join("patchwell.db").display());
    let d = dir.clone();
    reopen_then_refuse_newer(
        move || {
            let d = d.clone();
            Box::pin(async move { Store::open_sqlite(&d, at(0)).await })
        },
        url,
    )
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn the_embedded_database_is_in_wal_mode() {
    sqlx::any::install_default_drivers();
    let dir = std::env::temp_dir().join(format!("patchwell-wal-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let store = Store::open_sqlite(&dir, at(0)).await.unwrap();
    enrolled(&store, &["h1"]).await;
    // Another connection to the same file: the mode is the file's.
    let url = format!("sqlite://{}", dir.join("patchwell.db").display());
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.ok();
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn postgres_migrations_run_once_and_refuse_a_newer_schema() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    sqlx::any::install_default_drivers();
    let name = format!("patchwell_migrate_{}", std::process::id());
    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = with_database(&admin, &name);
    let u = url.clone();
    reopen_then_refuse_newer(
        move || {
            let u = u.clone();
            Box::pin(async move { Store::open_postgres(&u, at(0)).await })
        },
        url,
    )
    .await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .ok();
}

async fn a_feed_import_replaces_its_documents_whole(store: Store) {
    let feed = FeedRecord {
        name: "debian".into(),
        kind: "osv".into(),
        location: "/srv/osv/debian".into(),
        verification: format!("sha256:{}", "ab".repeat(32)),
        created_at: at(0),
        imported_at: None,
        sha256: None,
        records: 0,
        rejected: 0,
        last_error: None,
        last_error_at: None,
    };
    store.put_feed(&feed).await.unwrap();
    assert_eq!(store.feeds().await.unwrap(), std::slice::from_ref(&feed));
    let doc = |name: &str, content: &[u8]| FeedDocument {
        name: name.into(),
        content: content.to_vec(),
    };
    let first = [doc("a.json", b"{}"), doc("b.json", &[0, 159, 146, 150])];
    store
        .store_feed_import(&feed, &first, "11", 2, 1, at(10))
        .await
        .unwrap();
    assert_eq!(store.feed_documents("debian").await.unwrap(), first);
    // A failed attempt is recorded and the documents in force stay.
    store
        .record_feed_error("debian", "signature does not match", at(20))
        .await
        .unwrap();
    let stored = store.feed("debian").await.unwrap().unwrap();
    assert_eq!(
        stored.last_error.as_deref(),
        Some("signature does not match")
    );
    assert_eq!(stored.sha256.as_deref(), Some("11"));
    assert_eq!((stored.records, stored.rejected), (2, 1));
    assert_eq!(store.feed_documents("debian").await.unwrap(), first);
    // The next good import, from a new location, replaces every document
    // and the definition, and clears the error.
    let second = [doc("c.json", b"[]")];
    let moved = FeedRecord {
        location: "/srv/osv/debian-2".into(),
        ..feed.clone()
    };
    store
        .store_feed_import(&moved, &second, "22", 1, 0, at(30))
        .await
        .unwrap();
    let stored = store.feed("debian").await.unwrap().unwrap();
    assert_eq!(stored.last_error, None);
    assert_eq!(stored.imported_at, Some(at(30)));
    assert_eq!(stored.location, "/srv/osv/debian-2");
    assert_eq!(store.feed_documents("debian").await.unwrap(), second);
    // An import for a feed nobody configured stores nothing.
    assert!(store
        .store_feed_import(
            &FeedRecord {
                name: "nobody".into(),
                ..feed.clone()
            },
            &second,
            "33",
            1,
            0,
            at(40)
        )
        .await
        .is_err());
    assert!(store.feed_documents("nobody").await.unwrap().is_empty());
    store
        .record_feed_error("debian", "timeout", at(50))
        .await
        .unwrap();
    store.feed_unchanged("debian").await.unwrap();
    assert_eq!(
        store.feed("debian").await.unwrap().unwrap().last_error,
        None
    );
    assert!(store.delete_feed("debian").await.unwrap());
    assert!(!store.delete_feed("debian").await.unwrap());
    assert!(store.feed_documents("debian").await.unwrap().is_empty());
}

async fn hosts_are_found_by_source_package_with_their_updates(store: Store) {
    enrolled(&store, &["h1", "h2", "h3"]).await;
    let mut libssl = package("libssl3", "3.0.11-1~deb12u2");
    libssl.source = Some("openssl".into());
    let mut inv = inventory(1, "12", vec![libssl.clone(), package("bash", "5.2.15-2")]);
    inv.updates.push(security_update(
        "libssl3",
        "3.0.11-1~deb12u2",
        "3.0.17-1~deb12u2",
    ));
    store
        .store_inventory("h1", &inv, "d1", at(1))
        .await
        .unwrap();
    let mut h2 = inventory(1, "12", vec![package("bash", "5.2.15-2")]);
    h2.updates.push(AvailableUpdate {
        name: "bash".into(),
        installed: "5.2.15-2".into(),
        candidate: "5.2.15-2+b7".into(),
        suite: Some("stable-updates".into()),
        codename: Some("bookworm-updates".into()),
        security: false,
        ..inv.updates[0].clone()
    });
    store.store_inventory("h2", &h2, "d2", at(1)).await.unwrap();
    // The fleet's offers: security first, each with its hosts.
    let offered = store.offered_updates().await.unwrap();
    let rows: Vec<(&str, &str, bool, &str, u64)> = offered
        .iter()
        .map(|o| {
            (
                o.name.as_str(),
                o.candidate.as_str(),
                o.security,
                o.suites.as_str(),
                o.hosts,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("libssl3", "3.0.17-1~deb12u2", true, "oldstable-security", 1),
            ("bash", "5.2.15-2+b7", false, "stable-updates", 1),
        ]
    );
    let found = store
        .hosts_with_sources(Manager::Dpkg, &["openssl", "zlib"])
        .await
        .unwrap();
    assert_eq!(found, [("h1".to_owned(), libssl.clone())]);
    let by_binary = store
        .hosts_with_sources(Manager::Dpkg, &["bash"])
        .await
        .unwrap();
    let hosts: Vec<&str> = by_binary.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(hosts, ["h1", "h2"]);
    assert_eq!(store.updates("h1").await.unwrap(), inv.updates);
    assert_eq!(store.updates("h2").await.unwrap(), h2.updates);
    // Part of some hosts' inventories: the packages named (by source or
    // binary) and those whose name begins so, and these hosts' offers.
    let mut image = package("linux-image-6.1.0-17-amd64", "6.1.69-1");
    image.source = Some("linux-signed-amd64".into());
    let mut h3 = inventory(1, "12", vec![image.clone(), package("bash", "5.2.15-2")]);
    h3.updates.clear();
    store.store_inventory("h3", &h3, "d3", at(1)).await.unwrap();
    let hosts: Vec<String> = ["h1", "h3", "nobody"].map(String::from).to_vec();
    let openssl = store::PackageNames {
        names: &["openssl"],
        prefixes: &["linux-image-"],
    };
    assert_eq!(
        store.packages_of(&hosts, &openssl).await.unwrap(),
        [("h1".to_owned(), libssl.clone()), ("h3".to_owned(), image)]
    );
    let bash = store::PackageNames {
        names: &["bash"],
        prefixes: &[],
    };
    let found = store.packages_of(&hosts[..1], &bash).await.unwrap();
    assert_eq!(found, [("h1".to_owned(), package("bash", "5.2.15-2"))]);
    assert!(store.packages_of(&[], &bash).await.unwrap().is_empty());
    let offers = store
        .updates_of(&["h2".to_owned(), "h1".to_owned()])
        .await
        .unwrap();
    let expected: Vec<(String, AvailableUpdate)> = inv
        .updates
        .iter()
        .map(|u| ("h1".to_owned(), u.clone()))
        .chain(h2.updates.iter().map(|u| ("h2".to_owned(), u.clone())))
        .collect();
    assert_eq!(offers, expected);
    // A revoked host's offers no longer count.
    store
        .revoke_host("h2", &Why::new("alice", "revoke"), at(2))
        .await
        .unwrap();
    assert_eq!(store.offered_updates().await.unwrap().len(), 1);
}

fn step(job: &str, host: &str, step: &str, offset: i64) -> StepRecord {
    StepRecord {
        job_id: job.into(),
        host_id: host.into(),
        step: step.into(),
        at: at(offset),
        detail: None,
        failure: (step == "failed").then(|| "apt-get install failed (exit 100)".to_owned()),
        changes: (step == "installed").then(|| r#"[{"name":"libssl3"}]"#.to_owned()),
    }
}

async fn a_rollout_hands_out_jobs_and_records_steps(store: Store) {
    enrolled(&store, &["h1", "h2", "h3"]).await;
    let why = Why::new("alice", "create-rollout");
    let rollout = NewRollout {
        name: "openssl".into(),
        spec: r#"{"packages":["libssl3"]}"#.into(),
        state: r#"{"ring_started":[null,null]}"#.into(),
        status: "running".into(),
        release: None,
        hosts: ["h1", "h2", "h3", "gone"]
            .iter()
            .enumerate()
            .map(|(i, h)| NewRolloutHost {
                host_id: (*h).into(),
                ring: u32::from(i > 0),
                packages: r#"[{"name":"libssl3","arch":"amd64","version":"3.0.17-1~deb12u2"}]"#
                    .into(),
            })
            .collect(),
    };
    store.create_rollout(&rollout, &why, at(10)).await.unwrap();
    // A second with the same name is refused.
    let err = store
        .create_rollout(&rollout, &why, at(11))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    let stored = store.rollout("openssl").await.unwrap().unwrap();
    assert_eq!((stored.generation, stored.status.as_str()), (1, "running"));
    assert_eq!(stored.created_by, "alice");
    // A host that does not exist is left out.
    let hosts = store.rollout_hosts("openssl").await.unwrap();
    let lines: Vec<(&str, u32, &str)> = hosts
        .iter()
        .map(|h| (h.host_id.as_str(), h.ring, h.progress.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            ("h1", 0, "not_started"),
            ("h2", 1, "not_started"),
            ("h3", 1, "not_started")
        ]
    );

    // The executor starts ring 0: one job for h1.
    let update = RolloutUpdate {
        name: "openssl".into(),
        expected_generation: 1,
        generation: 1,
        state: r#"{"ring_started":[1780000020,null]}"#.into(),
        status: "running".into(),
        assignments: vec![Assignment {
            host_id: "h1".into(),
            job_id: "j1".into(),
            job_kind: "install".into(),
            job: "{}".into(),
        }],
        reset: vec![],
    };
    store
        .update_rollout(&update, Some(&Why::new("executor", "start-ring")), at(20))
        .await
        .unwrap();
    let waiting = store.undelivered_jobs().await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].job_id.as_deref(), Some("j1"));
    // Lines leave out the packages and the signed job; the packages are
    // read apart, of some hosts or all.
    let whole = store.rollout_hosts("openssl").await.unwrap();
    let lines = store.rollout_lines("openssl").await.unwrap();
    assert_eq!(whole.len(), lines.len());
    for (w, l) in whole.iter().zip(&lines) {
        assert_eq!(
            (&l.host_id, l.ring, &l.progress, &l.job_id, &l.step),
            (&w.host_id, w.ring, &w.progress, &w.job_id, &w.step)
        );
        assert_eq!((l.packages.as_str(), l.job.as_deref()), ("", None));
    }
    assert_eq!(whole[0].job.as_deref(), Some("{}"));
    let all = store.rollout_packages("openssl", None).await.unwrap();
    assert_eq!(all.len(), 3);
    for w in &whole {
        assert_eq!(all[&w.host_id], w.packages);
    }
    let some = store
        .rollout_packages("openssl", Some(&["h2".to_owned(), "nobody".to_owned()]))
        .await
        .unwrap();
    assert_eq!(some.keys().collect::<Vec<_>>(), ["h2"]);
    // A decision made for another generation is refused, with nothing written.
    let stale = RolloutUpdate {
        expected_generation: 0,
        status: "halted".into(),
        ..update.clone()
    };
    let err = store
        .update_rollout(&stale, None, at(21))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(
        store.rollout("openssl").await.unwrap().unwrap().status,
        "running"
    );

    // Steps: only the host the job is for may report it.
    let outcomes = store
        .record_steps(
            &[
                step("j1", "h1", "received", 30),
                step("j1", "h2", "received", 30),
                step("j1", "h1", "installed", 31),
                step("j1", "h1", "succeeded", 32),
                // A late duplicate changes nothing.
                step("j1", "h1", "failed", 33),
            ],
            at(34),
        )
        .await
        .unwrap();
    assert_eq!(outcomes[1], StepOutcome::UnknownJob);
    assert_eq!(
        outcomes[3],
        StepOutcome::Recorded {
            rollout: "openssl".into(),
            progress: "succeeded".into(),
            moved: true
        }
    );
    assert!(
        matches!(&outcomes[4], StepOutcome::Recorded { progress, moved: false, .. } if progress == "succeeded")
    );
    assert!(store.undelivered_jobs().await.unwrap().is_empty());
    let h1 = &store.rollout_hosts("openssl").await.unwrap()[0];
    assert_eq!(h1.progress, "succeeded");
    assert_eq!(h1.done_at, Some(at(32)));
    assert_eq!(h1.installed_at, Some(at(32)), "when its install succeeded");
    assert_eq!(h1.changes.as_deref(), Some(r#"[{"name":"libssl3"}]"#));
    let events = store.job_events("openssl", Some("h1")).await.unwrap();
    let steps: Vec<&str> = events.iter().map(|e| e.step.as_str()).collect();
    assert_eq!(steps, ["received", "installed", "succeeded", "failed"]);
    assert_eq!(store.job_events("openssl", None).await.unwrap().len(), 4);

    // A rollback: a new generation, h1 rolls back and fails.
    let rollback = RolloutUpdate {
        name: "openssl".into(),
        expected_generation: 1,
        generation: 2,
        state: "{}".into(),
        status: "rolling_back".into(),
        assignments: vec![Assignment {
            host_id: "h1".into(),
            job_id: "j2".into(),
            job_kind: "rollback".into(),
            job: "{}".into(),
        }],
        reset: vec![],
    };
    store
        .update_rollout(&rollback, Some(&Why::new("alice", "rollback")), at(40))
        .await
        .unwrap();
    store
        .record_steps(&[step("j2", "h1", "failed", 41)], at(42))
        .await
        .unwrap();
    let h1 = &store.rollout_hosts("openssl").await.unwrap()[0];
    assert_eq!(h1.progress, "rollback_failed");
    assert_eq!(h1.installed_at, Some(at(32)), "a rollback leaves it");
    let line = &store.rollout_lines("openssl").await.unwrap()[0];
    assert_eq!(line.installed_at, Some(at(32)));
    assert_eq!(
        h1.detail.as_deref(),
        Some("apt-get install failed (exit 100)")
    );
    // Creation, the ring start and the rollback are in the audit log.
    let audit = store
        .audit_entries(Some("rollouts/openssl"), 0, 10)
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.event.action.as_str()).collect();
    assert_eq!(actions, ["create-rollout", "start-ring", "rollback"]);

    // A rollout stored with its own status, and a release decided as it
    // was created, audited after the creation in the same transaction.
    let held = NewRollout {
        name: "held".into(),
        status: "awaiting_release".into(),
        release: Some(Why::new("alice", "release-rollout")),
        hosts: Vec::new(),
        ..rollout
    };
    store.create_rollout(&held, &why, at(40)).await.unwrap();
    let stored = store.rollout("held").await.unwrap().unwrap();
    assert_eq!(stored.status, "awaiting_release");
    let audit = store
        .audit_entries(Some("rollouts/held"), 0, 10)
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.event.action.as_str()).collect();
    assert_eq!(actions, ["create-rollout", "release-rollout"]);
    assert!(audit[1]
        .event
        .after
        .as_deref()
        .unwrap()
        .contains(r#""status":"awaiting_release","state":{"ring_started""#));
}

/// One number a query counts.
async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

/// What the fleet's package lists take in the database: package sets, the
/// rows of those sets, and the rows hosts keep of their own.
async fn package_storage(store: &Store) -> (i64, i64, i64) {
    (
        count(store, "SELECT COUNT(*) FROM package_sets").await,
        count(store, "SELECT COUNT(*) FROM package_set_rows").await,
        count(store, "SELECT COUNT(*) FROM host_packages").await,
    )
}

fn image(size: usize) -> Vec<Package> {
    (0..size)
        .map(|i| package(&format!("pkg{i:03}"), &format!("1.{i}-1")))
        .collect()
}

async fn cloned_hosts_share_one_stored_package_list(store: Store) {
    let ids: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
    enrolled(&store, &ids.iter().map(String::as_str).collect::<Vec<_>>()).await;
    // Nine hosts cloned from one image, and a tenth that newer pkg000, holds
    // pkg001, lacks pkg002 and has one package more.
    let image = image(200);
    let mut odd = image.clone();
    odd[0] = package("pkg000", "1.0-2");
    odd[1].held = true;
    odd.remove(2);
    odd.push(package("extra", "1.0-1"));
    for (n, id) in ids.iter().enumerate() {
        let packages = if n == 9 { odd.clone() } else { image.clone() };
        store
            .store_inventory(id, &inventory(100, "12", packages), "d", at(100))
            .await
            .unwrap();
    }
    // One stored list of 200 rows, and the tenth host's five differences
    // (pkg000's two versions, pkg001, pkg002, extra): 205 rows, not 2,000.
    assert_eq!(package_storage(&store).await, (1, 200, 5));

    // Every read gives each host its own packages.
    assert_eq!(
        store.packages("h3").await.unwrap(),
        as_stored(image.clone())
    );
    assert_eq!(store.packages("h9").await.unwrap(), as_stored(odd.clone()));
    let below = store
        .hosts_with_package_below(Manager::Dpkg, "pkg000", "1.0-2")
        .await
        .unwrap();
    let below: Vec<&str> = below.iter().map(|h| h.host_id.as_str()).collect();
    assert_eq!(below, &ids[..9]);
    let per_version = store
        .hosts_per_package_version(Manager::Dpkg, "pkg000")
        .await
        .unwrap();
    let per_version: Vec<(&str, u64)> = per_version
        .iter()
        .map(|c| (c.value.as_str(), c.hosts))
        .collect();
    assert_eq!(per_version, [("1.0-1", 9), ("1.0-2", 1)]);
    let with_source = store
        .hosts_with_sources(Manager::Dpkg, &["pkg002", "extra"])
        .await
        .unwrap();
    let with_source: Vec<(&str, &str)> = with_source
        .iter()
        .map(|(h, p)| (h.as_str(), p.name.as_str()))
        .collect();
    let mut expected: Vec<(&str, &str)> = ids[..9].iter().map(|h| (h.as_str(), "pkg002")).collect();
    expected.push(("h9", "extra"));
    assert_eq!(with_source, expected);
    let of = store
        .packages_of(
            &["h3".to_owned(), "h9".to_owned()],
            &store::PackageNames {
                names: &["pkg001"],
                prefixes: &[],
            },
        )
        .await
        .unwrap();
    let of: Vec<(&str, &str, bool)> = of
        .iter()
        .map(|(h, p)| (h.as_str(), p.name.as_str(), p.held))
        .collect();
    assert_eq!(of, [("h3", "pkg001", false), ("h9", "pkg001", true)]);
}

/// Stores host `id`'s move from `before` to `after` as a delta.
async fn send_delta(store: &Store, id: &str, after: &Inventory, before: &Inventory) {
    store
        .store_inventory_delta(id, &after.delta_from(before), after.collected_at)
        .await
        .unwrap();
}

async fn a_host_that_drifts_from_its_image_moves_to_another_list(store: Store) {
    enrolled(&store, &["a", "b"]).await;
    let first = inventory(100, "12", image(200));
    for id in ["a", "b"] {
        store
            .store_inventory(id, &first, &first.digest(), at(100))
            .await
            .unwrap();
    }
    assert_eq!(package_storage(&store).await, (1, 200, 0));

    // Host a upgrades half its packages: too far from the image to keep
    // as differences, so it gets a list of its own.
    let mut upgraded = first.clone();
    upgraded.collected_at = at(200);
    for p in &mut upgraded.packages[..100] {
        p.version = format!("{}+u1", p.version);
        p.source_version = Some(p.version.clone());
    }
    store
        .store_inventory("a", &upgraded, &upgraded.digest(), at(200))
        .await
        .unwrap();
    assert_eq!(package_storage(&store).await, (2, 400, 0));
    // Host b follows: it takes a's list, and the image's, which no host
    // has any more, is gone.
    store
        .store_inventory("b", &upgraded, &upgraded.digest(), at(200))
        .await
        .unwrap();
    assert_eq!(package_storage(&store).await, (1, 200, 0));
    let expected = as_stored(upgraded.packages.clone());
    assert_eq!(store.packages("a").await.unwrap(), expected);
    assert_eq!(store.packages("b").await.unwrap(), expected);

    // A delta on b: pkg150 removed, pkg151 held, pkg152 upgraded, one new.
    let mut next = upgraded.clone();
    next.collected_at = at(300);
    next.packages[151].held = true;
    next.packages[152].version = "1.152-2".into();
    next.packages[152].source_version = Some("1.152-2".into());
    next.packages.remove(150);
    next.packages.push(package("new", "1-1"));
    send_delta(&store, "b", &next, &upgraded).await;
    // b keeps five rows of its own (pkg150 taken away, pkg151 held,
    // pkg152's two versions, new); a is untouched.
    assert_eq!(package_storage(&store).await, (1, 200, 5));
    assert_eq!(
        store.packages("b").await.unwrap(),
        as_stored(next.packages.clone())
    );
    assert_eq!(store.packages("a").await.unwrap(), expected);
    assert_eq!(
        store.host("b").await.unwrap().unwrap().inventory_digest,
        Some(next.digest())
    );

    // A delta back to the shared list leaves b nothing of its own.
    let mut back = upgraded.clone();
    back.collected_at = at(400);
    send_delta(&store, "b", &back, &next).await;
    assert_eq!(package_storage(&store).await, (1, 200, 0));
    assert_eq!(store.packages("b").await.unwrap(), expected);

    // Deltas that take b far from the list move it to a list of its own.
    let mut far = back.clone();
    far.collected_at = at(500);
    for p in &mut far.packages[100..130] {
        p.version = format!("{}+u2", p.version);
        p.source_version = Some(p.version.clone());
    }
    send_delta(&store, "b", &far, &back).await;
    assert_eq!(package_storage(&store).await, (2, 400, 0));
    assert_eq!(
        store.packages("b").await.unwrap(),
        as_stored(far.packages.clone())
    );
    assert_eq!(store.packages("a").await.unwrap(), expected);
}

async fn refused_deltas_leave_nothing_open_and_new_updates_are_stored(store: Store) {
    enrolled(&store, &["h1"]).await;
    let first = inventory(100, "12", image(50));
    store
        .store_inventory("h1", &first, &first.digest(), at(100))
        .await
        .unwrap();
    let mut next = first.clone();
    next.collected_at = at(200);
    next.packages[0].version = "1.0-2".into();
    next.packages[0].source_version = Some("1.0-2".into());
    // More refusals than the pool has connections: each must end its
    // transaction, or a later write would find one still open.
    let mut stale = next.delta_from(&first);
    stale.base_digest = "not the stored one".into();
    for _ in 0..20 {
        assert!(matches!(
            store.store_inventory_delta("h1", &stale, at(200)).await,
            Err(Error::Conflict(_))
        ));
    }
    // A delta that also brings an available update: stored whole.
    next.updates = vec![security_update("pkg001", "1.1-1", "1.1-2")];
    store
        .store_inventory_delta("h1", &next.delta_from(&first), at(200))
        .await
        .unwrap();
    assert_eq!(store.updates("h1").await.unwrap(), next.updates);
    assert_eq!(
        store.packages("h1").await.unwrap(),
        as_stored(next.packages.clone())
    );
    // Writes after them all go through.
    for n in 0..10 {
        let mut later = next.clone();
        later.collected_at = at(300 + n);
        later.packages[1].held = n % 2 == 0;
        store
            .store_inventory_delta("h1", &later.delta_from(&next), at(300 + n))
            .await
            .unwrap();
        next = later;
    }
    assert_eq!(
        store.host("h1").await.unwrap().unwrap().inventory_digest,
        Some(next.digest())
    );
}

/// A security update of a Debian 12 package, as apt offers it.
fn security_update(name: &str, installed: &str, candidate: &str) -> AvailableUpdate {
    AvailableUpdate {
        manager: Manager::Dpkg,
        name: name.into(),
        arch: "amd64".into(),
        installed: installed.into(),
        candidate: candidate.into(),
        suite: Some("oldstable-security".into()),
        codename: Some("bookworm-security".into()),
        origin: Some("Debian".into()),
        security: true,
    }
}

async fn simultaneous_deltas_from_many_hosts_are_each_stored_or_refused_alone(store: Store) {
    let ids: Vec<String> = (0..40).map(|i| format!("h{i}")).collect();
    enrolled(&store, &ids.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let first = inventory(100, "12", image(100));
    for id in &ids {
        store
            .store_inventory(id, &first, &first.digest(), at(100))
            .await
            .unwrap();
    }
    // Three rounds of a delta from every host at once; every fifth host's
    // delta is from a base that is not the stored one, so it is refused
    // and its host keeps what it had. The deltas of a round wait for one
    // writer and are stored together where the backend does that.
    let mut current: Vec<Inventory> = ids.iter().map(|_| first.clone()).collect();
    for round in 0..3i64 {
        let sent: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let mut next = current[n].clone();
                next.collected_at = at(200 + round);
                let p = &mut next.packages[(n + round as usize) % 100];
                p.version = format!("{}+r{round}", p.version);
                p.source_version = Some(p.version.clone());
                next.packages
                    .push(package(&format!("extra-{n}-{round}"), "1-1"));
                let mut delta = next.delta_from(&current[n]);
                let refused = n % 5 == 0;
                if refused {
                    delta.base_digest = "not the stored one".into();
                }
                let (store, id) = (store.clone(), id.clone());
                let task = tokio::spawn(async move {
                    store
                        .store_inventory_delta(&id, &delta, at(200 + round))
                        .await
                });
                (n, next, refused, task)
            })
            .collect();
        for (n, next, refused, task) in sent {
            match (task.await.unwrap(), refused) {
                (Ok(_), false) => current[n] = next,
                (Err(Error::Conflict(why)), true) => assert!(why.contains("base"), "{why}"),
                (other, refused) => panic!("host h{n} (refused: {refused}): {other:?}"),
            }
        }
    }
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(
            store.packages(id).await.unwrap(),
            as_stored(current[n].packages.clone()),
            "{id}"
        );
        assert_eq!(
            store.host(id).await.unwrap().unwrap().inventory_digest,
            Some(current[n].digest()),
            "{id}"
        );
    }
}

async fn versions_no_host_holds_are_pruned_and_stored_again_when_sent_again(store: Store) {
    enrolled(&store, &["a", "b"]).await;
    // Host a lists 300 packages, b ten of the same; then a is left with
    // five others.
    let big = image(300);
    let first = inventory(100, "12", big.clone());
    store
        .store_inventory("a", &first, "d1", at(100))
        .await
        .unwrap();
    store
        .store_inventory("b", &inventory(100, "12", image(10)), "d1", at(100))
        .await
        .unwrap();
    let small: Vec<Package> = (0..5)
        .map(|i| package(&format!("new{i}"), "2.0-1"))
        .collect();
    store
        .store_inventory("a", &inventory(200, "12", small), "d2", at(200))
        .await
        .unwrap();
    assert_eq!(store.package_version_count().await.unwrap(), 305);

    // The 290 versions no host holds go; b's ten and a's five stay.
    assert_eq!(store.prune_package_versions().await.unwrap(), 290);
    assert_eq!(store.package_version_count().await.unwrap(), 15);
    assert_eq!(store.prune_package_versions().await.unwrap(), 0);
    assert_eq!(store.packages("b").await.unwrap(), as_stored(image(10)));

    // Versions deleted and sent again are stored again, in a whole
    // inventory and in a delta (which names versions by key).
    let again = inventory(300, "12", big.clone());
    store
        .store_inventory("a", &again, &again.digest(), at(300))
        .await
        .unwrap();
    assert_eq!(store.packages("a").await.unwrap(), as_stored(big.clone()));
    let fewer = inventory(400, "12", big[..100].to_vec());
    send_delta(&store, "a", &fewer, &again).await;
    // 200 of the big list, and the five a had before.
    assert_eq!(store.prune_package_versions().await.unwrap(), 205);
    let mut back = big[..100].to_vec();
    back.push(big[250].clone());
    let back = inventory(500, "12", back);
    send_delta(&store, "a", &back, &fewer).await;
    assert_eq!(
        store.packages("a").await.unwrap(),
        as_stored(back.packages.clone())
    );
    assert_eq!(store.package_version_count().await.unwrap(), 101);
}

async fn a_host_may_have_at_most_its_limit_of_packages(store: Store) {
    let store = store.with_max_packages(20);
    enrolled(&store, &["a"]).await;
    let over = inventory(100, "12", image(21));
    match store.store_inventory("a", &over, "d0", at(100)).await {
        Err(Error::TooLarge(why)) => assert_eq!(
            why,
            "the inventory lists 21 packages; a host may have at most 20"
        ),
        other => panic!("{other:?}"),
    }
    assert!(store.packages("a").await.unwrap().is_empty());
    let full = inventory(100, "12", image(20));
    store
        .store_inventory("a", &full, &full.digest(), at(100))
        .await
        .unwrap();

    // A delta that would leave 21 is refused whole; one that swaps a
    // package for another is stored.
    let mut more = image(20);
    more.push(package("extra", "1.0-1"));
    let more = inventory(200, "12", more);
    match store
        .store_inventory_delta("a", &more.delta_from(&full), at(200))
        .await
    {
        Err(Error::TooLarge(why)) => assert_eq!(
            why,
            "the delta would leave the host with 21 packages; a host may have at most 20"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.packages("a").await.unwrap(), as_stored(image(20)));
    let mut swapped = image(20);
    swapped[0] = package("extra", "1.0-1");
    let swapped = inventory(200, "12", swapped);
    send_delta(&store, "a", &swapped, &full).await;
    assert_eq!(
        store.packages("a").await.unwrap(),
        as_stored(swapped.packages.clone())
    );
}
