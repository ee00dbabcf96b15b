//! The `erpgate` command's library: the identity host and the emulated ERP
//! API composed into one server ([`serve`]), and `erpgate up`, which puts
//! the gateway running the real filter in front of them ([`up`]).

pub mod explain;
pub mod serve;
pub mod up;

pub use serve::{Host, Running, admin_app, app, open_store, seed, start};
