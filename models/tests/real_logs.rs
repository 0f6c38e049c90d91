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
