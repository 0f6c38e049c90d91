//! End-to-end tests: the real binaries started on loopback (and the ARM
//! agent under qemu, the dashboard in Chromium), a module per area, in one
//! test binary.

mod abuse;
mod access_matrix;
mod accounts;
mod agent_check;
mod agent_learn;
mod agent_output;
mod agent_run;
mod agent_scan;
mod agent_time_zone;
mod agent_unattended;
mod alerts;
mod arm_qemu;
mod collector;
mod collector_pg;
mod dashboard_browser;
mod dashboard_login;
mod dashboard_triage;
mod decisions;
mod export_safety;
mod feedback;
mod first_day;
mod forward_agent;
mod forward_ingest;
mod forward_tls;
mod install;
mod migrate_store;
mod monitoring;
mod notify;
mod openapi;
mod packages;
mod pg_migrate;
mod respond_firewall;
mod schemas;
mod shutdown;
mod units;
