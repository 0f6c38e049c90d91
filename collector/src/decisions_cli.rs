//! `bfp-collector decisions list|add|delete`: on the database file, beside
//! a running service or without one, as `device` and `alerts` do. Agents
//! learn of an added or deleted decision at their next fetch, whichever
//! process wrote it.

use crate::auth::cli::audit_cli;
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
                Ok(new) => match store.add_decision(new).await {
                    Ok(d) => {
                        let detail = format!("group {} until {} by {} ({})", d.group, d.until, d.created_by, d.reason);
                        audit_cli(&*store, "decision.add", d.address.clone(), detail).await.map(|()| vec![d])
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        }
        DecisionsAction::Delete { id, by } => match store.delete_decision(*id, who(by)).await {
            Ok(d) => {
                let detail = format!("decision {id}, group {}, by {}", d.group, who(by));
                audit_cli(&*store, "decision.delete", d.address.clone(), detail).await.map(|()| vec![d])
            }
            Err(e) => Err(e),
        },
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
