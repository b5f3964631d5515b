//! With `database.retention_days`, final rows older than that are deleted;
//! messages still in flight stay whatever their age.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

/// A message id of `ms` (unix ms): `(ms << 16) | counter`.
fn id_at(ms: i64, counter: i64) -> String {
    format!("{:016x}", (ms << 16) | counter)
}

#[test]
fn rows_past_the_retention_are_deleted_at_start_and_in_flight_messages_stay() {
    let (_dir, db) = temp_db();
    // Migrate the file, then plant rows two days old.
    drop(smppd_sqlite::Store::open(&db, smppd_sqlite::StoreOptions::default()).unwrap());
    let two_days_ago = smppd_actors::smpp::time::unix_ms() - 2 * 86_400_000;
    let (old_delivered, old_submitted) = (id_at(two_days_ago, 1), id_at(two_days_ago, 2));
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!(
            "INSERT INTO messages (id, tenant, source, destination, body, status, channel,
                                   smsc_message_id, created_at, updated_at, done_at)
             VALUES ({t} << 16 | 1, 'acme', 'ACME', '4915100000001', 'old', 'delivered',
                     'sim', 'x1', {t}, {t}, {t}),
                    ({t} << 16 | 2, 'acme', 'ACME', '4915100000001', 'old', 'submitted',
                     'sim', 'x2', {t}, {t}, NULL);
             INSERT INTO inbound (tenant, channel, source, destination, body, received_at)
             VALUES ('acme', 'sim', '4915100000001', '12345', 'old MO', {t});",
            t = two_days_ago
        ))
        .unwrap();

    let sim = simulator(&[ACME], Faults::default());
    let config = config_text(&db, sim.local_addr().port(), &[ACME], "").replace(
        "synchronous = \"normal\"\n",
        "synchronous = \"normal\"\nretention_days = 1\n",
    );
    let engine = TestEngine::start(&config);
    let http = engine.http();
    let fresh = http.send(ACME.api_key, "4915100000001", "new");
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&fresh),
        &["delivered"],
        Duration::from_secs(20),
    );

    eventually(
        Duration::from_secs(10),
        "the old final message deleted",
        || http.message(ACME.api_key, &old_delivered).status == 404,
    );
    let kept = http.message(ACME.api_key, &old_submitted);
    assert_eq!(kept.status, 200, "{kept:?}");
    assert_eq!(kept.body["status"], "submitted");
    assert_eq!(
        http.message(ACME.api_key, &fresh).body["status"],
        "delivered"
    );
    // Counted once the deleting transaction has committed and answered.
    eventually(Duration::from_secs(10), "the pruned rows counted", || {
        let metrics = http.get("/metrics", None);
        let text = metrics.body.as_str().unwrap_or("");
        text.contains("smppd_store_pruned_total{kind=\"messages\"} 1")
            && text.contains("smppd_store_pruned_total{kind=\"inbound\"} 1")
    });
    let inbound = http.get("/v1/inbound", Some(ACME.api_key));
    assert_eq!(inbound.status, 200);
    assert!(
        !inbound.body.to_string().contains("old MO"),
        "{}",
        inbound.body
    );
}
