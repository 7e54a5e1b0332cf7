//! Integration tests: the real `kahi` binary, real child processes, real sockets.
//! One test binary, with modules by area.

mod util;

mod cli;
mod completion;
mod config_errors;
mod console;
mod ctl;
mod ctl_habits;
mod dashboard;
mod deploy;
mod deps;
mod docs;
mod events;
mod fcgi;
mod harness;
mod http;
mod http_limits;
mod http_unix;
mod init;
mod lifecycle;
mod lifecycle_spawn;
mod lifecycle_stop;
mod listeners;
mod logs;
mod migrate;
mod pid1;
mod regression;
mod reload;
mod run;
mod scratch;
mod sources;
mod spawn;
mod webhooks;
mod xmlrpc;
mod xmlrpc_daemon;
mod xmlrpc_parity;
