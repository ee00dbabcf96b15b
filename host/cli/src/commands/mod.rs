//! One module per `erpgate` command.

pub mod apps;
pub mod explain;
pub mod gateway;
pub mod keys;
pub mod policy;
pub mod serve;
pub mod sessions;
pub mod support;
pub mod token;
pub mod up;
pub mod users;
