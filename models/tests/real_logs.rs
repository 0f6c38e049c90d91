//! The real-log groups of the model card load through common's analyzer and
//! carry the labels the card states.

#[test]
fn real_log_groups_load_with_their_documented_labels() {
    let Some(dir) = bfp_models::real::real_dir() else {
        eprintln!("shared/data/real not found beside the repository: skipped");
        return;
    };
    let groups = bfp_models::real::groups(&dir).unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.name).collect();
    for expected in ["Cowrie honeypot: sessions", "elastic auth.log: sessions from the admins' address"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    for g in &groups {
        assert!(!g.rows.is_empty(), "{}", g.name);
        assert_eq!(g.suspicious, !(g.name.contains("admin") || g.name.contains("owner")), "{}", g.name);
        assert!(g.rows.iter().all(|f| f.login_hour < 24 && f.session_duration_min >= 0.0));
    }
}

/// The agent's loop (schema-3 model + the account-churn rule) on the real
/// logs, as the card's "Schema 2" real-log table reports it: the known
/// admins stay (almost all) Normal, most honeypot sessions are caught. Loose
/// bounds, so a retrained model may move within them, not past them.
#[test]
fn the_schema_two_agent_loop_on_the_real_logs() {
    let Some(dir) = bfp_models::real::real_dir() else {
        eprintln!("shared/data/real not found beside the repository: skipped");
        return;
    };
    let edge = bfp_models::edge::embedded().unwrap();
    let schema1 = bfp_models::embedded().unwrap();
    let groups = bfp_models::edge::real(&dir, &edge, &schema1).unwrap();
    let agent = |name: &str| {
        let g = groups.iter().find(|g| g.name.starts_with(name)).unwrap_or_else(|| panic!("{name} missing"));
        (g.flagged[1], g.rows)
    };
    let (admin_flagged, admins) = agent("elastic auth.log: sessions from the admins' address");
    assert!(admin_flagged * 20 <= admins, "{admin_flagged} of {admins} admin sessions flagged (> 5%)");
    let (cowrie_flagged, cowrie) = agent("Cowrie honeypot: sessions");
    assert!(cowrie_flagged * 2 >= cowrie, "only {cowrie_flagged} of {cowrie} honeypot sessions flagged (< 50%)");
    let (failing, sources) = agent("elastic auth.log: other sources that only failed");
    assert!(failing * 10 >= sources * 9, "{failing} of {sources} failing-only sources flagged (< 90%)");
}
