//! `bfp-collector decisions list|add|delete`: on the database file, beside
//! a running service or without one, as `device` and `alerts` do. Agents
//! learn of an added or deleted decision at their next fetch, whichever
//! process wrote it.

use crate::config::{DecisionsAction, DecisionsArgs};
use crate::error::Result;
use crate::store;
use crate::store::decisions::{Decision, DecisionQuery, NewDecision};

/// Runs one `decisions` action and prints its outcome (a table, or JSON
/// with `--json`).
pub async fn run(args: &DecisionsArgs) -> Result<()> {
    let store = store::open_db(&args.db).await?;
    let who = |by: &Option<String>| by.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "cli".into());
    let done = match &args.action {
        DecisionsAction::List { group, all, limit } => {
            let q = DecisionQuery { group: group.clone(), all: *all, limit: (*limit).clamp(1, 10_000) };
            store.decisions(q).await
        }
        DecisionsAction::Add { address, duration, group, reason, by } => {
            match NewDecision::parse(address, duration, group, reason, &who(by)) {
                Ok(new) => store.add_decision(new).await.map(|d| vec![d]),
                Err(e) => Err(e),
            }
        }
        DecisionsAction::Delete { id, by } => store.delete_decision(*id, who(by)).await.map(|d| vec![d]),
    };
    store.shutdown().await;
    let list = done?;
    if args.json {
        let text = match &args.action {
            DecisionsAction::List { .. } => serde_json::to_string_pretty(&list),
            _ => serde_json::to_string_pretty(&list[0]),
        };
        println!("{}", text.unwrap_or_default());
    } else {
        print_table(&list);
    }
    Ok(())
}

fn print_table(list: &[Decision]) {
    println!("{:>6}  {:<8}  {:<16}  {:<40}  {:<20}  {:<12}  reason", "id", "state", "group", "address", "until", "by");
    for d in list {
        println!(
            "{:>6}  {:<8}  {:<16}  {:<40}  {:<20}  {:<12}  {}",
            d.id,
            d.state,
            d.group,
            d.address,
            bfp_common::time::format_utc(d.until),
            d.created_by,
            d.reason
        );
    }
}
