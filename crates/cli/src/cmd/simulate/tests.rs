//! Simulations small enough for the default test run (a few epochs, a few objects).

use super::{Config, Report, simulate};

fn config(nodes: u32, objects: u32, epochs: u64) -> Config {
    let layout = welkin_object::Layout::default_for(nodes as u16);
    Config {
        nodes,
        domains: nodes,
        capacity: 1 << 40,
        objects,
        object_size: 8 << 20,
        k: layout.k,
        m: layout.m,
        epochs,
        fail_rate: 0.0,
        recover_rate: 0.5,
        flap: Vec::new(),
        kill: Vec::new(),
        seed: 1,
    }
}

fn run(config: &Config) -> Report {
    let mut seen = 0;
    let report = simulate(config, |epoch| {
        assert_eq!(epoch, seen + 1, "epochs are reported in order");
        seen = epoch;
    });
    assert_eq!(seen, config.epochs);
    assert_eq!(
        report.refused_transactions, 0,
        "the simulated nodes only send what the state accepts: {:?}",
        report.first_refusal
    );
    report
}

#[test]
fn a_seeded_run_is_reproducible() {
    let mut config = config(7, 6, 10);
    config.fail_rate = 0.05;
    config.recover_rate = 0.9;
    config.seed = 7;
    let first = serde_json::to_string(&run(&config)).expect("serialises");
    let second = serde_json::to_string(&run(&config)).expect("serialises");
    assert_eq!(first, second);
    let report: serde_json::Value = serde_json::from_str(&first).expect("parses");
    assert!(report["audits_passed"].as_u64() > Some(0), "{report}");
    assert!(
        report["audits_failed"].as_u64() > Some(0),
        "failures happened: {report}"
    );
}

#[test]
fn without_failures_nothing_is_lost_and_every_audit_passes() {
    let config = config(4, 8, 5);
    let report = run(&config);
    assert_eq!(report.objects_stored, 8);
    assert_eq!(report.objects_lost, 0);
    assert_eq!(report.objects_at_full_strength, 8);
    assert_eq!(report.min_healthy_shards, 4);
    assert_eq!(report.audits_failed, 0);
    assert_eq!(
        report.audits_passed,
        4 * 5,
        "every node is challenged every epoch"
    );
    assert_eq!(report.repair_orders_made, 0);
    assert!(
        report
            .node_reports
            .iter()
            .all(|n| n.reputation_percent == 100)
    );
}

#[test]
fn repairs_bring_every_object_back_after_a_node_is_lost_for_good() {
    let mut config = config(6, 4, 12);
    config.k = 2;
    config.m = 2;
    config.kill = vec![0];
    let report = run(&config);
    let killed = &report.node_reports[0];
    assert!(killed.audits_failed >= 1, "{report:?}");
    assert_eq!(
        killed.shards_placed, 0,
        "every shard moved off it: {report:?}"
    );
    assert_eq!(report.objects_lost, 0);
    assert_eq!(
        report.min_healthy_shards, 3,
        "one shard of an object lost at a time"
    );
    assert_eq!(
        report.objects_at_full_strength, report.objects_stored,
        "every object back to k+m healthy shards: {report:?}"
    );
    // A lost shard stays in its holder's list until its repair is ordered, so it may be
    // challenged (and failed) once more: at least one failure per repair.
    assert!(report.repairs_completed >= 1, "{report:?}");
    assert!(
        report.repairs_completed <= killed.audits_failed,
        "{report:?}"
    );
    assert_eq!(report.open_repair_orders, 0);
    assert!(report.repair_bytes_moved > 0);
    assert!(
        report.node_reports[1..]
            .iter()
            .all(|n| n.audits_failed == 0)
    );
}

#[test]
fn a_flapping_node_is_failed_only_while_down() {
    let mut config = config(4, 4, 4);
    config.flap = vec![3];
    let report = run(&config);
    let flapper = &report.node_reports[3];
    // Down in epochs 1 and 3: its challenges fail as unanswered when 2 and 4 start; the
    // challenge of epoch 4 is still open at the end.
    assert_eq!(flapper.audits_failed, 2, "{report:?}");
    assert!(
        report.node_reports[..3]
            .iter()
            .all(|n| n.audits_failed == 0)
    );
    assert_eq!(report.objects_lost, 0);
}

#[test]
fn objects_that_do_not_fit_are_refused_and_counted_apart() {
    let mut config = config(4, 3, 1);
    config.capacity = 1 << 20; // shards of objects of 4 to 8 MiB take 2 to 4 MiB
    let report = run(&config);
    assert_eq!(report.objects_refused, 3, "{report:?}");
    assert_eq!(report.objects_stored, 0);
    assert_eq!(
        report.refused_transactions, 0,
        "refused puts are counted apart"
    );
}

#[test]
fn nodes_back_with_empty_disks_declare_their_losses_and_nothing_is_lost() {
    // Each node holds 40 shards; audits alone find one per node per epoch, far slower than
    // disks are lost here. Declared losses are repaired at once.
    let mut config = config(7, 40, 20);
    config.fail_rate = 0.05;
    config.recover_rate = 0.9;
    let report = run(&config);
    assert_eq!(report.objects_stored, 40);
    assert_eq!(report.objects_lost, 0, "{report:?}");
    assert!(
        report.repair_orders_made > report.audits_failed,
        "most losses are declared, not found by audits: {report:?}"
    );
}
