//! Who the caller is and what it may do: operators' passwords and the
//! command line that manages users and API tokens (`bfp-collector user`,
//! `bfp-collector token`), which works on the database file directly so the
//! first administrator is created there, never granted by an address.

pub mod cli;
pub mod password;
