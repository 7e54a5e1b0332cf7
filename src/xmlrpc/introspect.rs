//! The methods served, as `system.listMethods`, `system.methodHelp` and
//! `system.methodSignature` describe them (supervisord's docstrings, shortened). A method
//! that is not here is UNKNOWN_METHOD.

/// Every method served: its name, signature (return type first, as
/// `system.methodSignature` gives it) and help.
pub const METHODS: &[(&str, &[&str], &str)] = &[
    (
        "supervisor.addProcessGroup",
        &["boolean", "string"],
        "Update the config for a running process from config file.",
    ),
    ("supervisor.clearAllProcessLogs", &["array"], "Clear all process log files"),
    ("supervisor.clearLog", &["boolean"], "Clear the main log."),
    (
        "supervisor.clearProcessLog",
        &["boolean", "string"],
        "Clear the stdout and stderr logs for the named process and reopen them.",
    ),
    (
        "supervisor.clearProcessLogs",
        &["boolean", "string"],
        "Clear the stdout and stderr logs for the named process and reopen them.",
    ),
    (
        "supervisor.getAPIVersion",
        &["string"],
        "Return the version of the RPC API used by supervisord",
    ),
    (
        "supervisor.getAllConfigInfo",
        &["array"],
        "Get info about all available process configurations. Each struct represents a single process (i.e. groups get flattened).",
    ),
    ("supervisor.getAllProcessInfo", &["array"], "Get info about all processes"),
    ("supervisor.getIdentification", &["string"], "Return identifying string of supervisord"),
    ("supervisor.getPID", &["int"], "Return the PID of supervisord"),
    ("supervisor.getProcessInfo", &["struct", "string"], "Get info about a process named name"),
    ("supervisor.getState", &["struct"], "Return current state of supervisord as a struct"),
    (
        "supervisor.getSupervisorVersion",
        &["string"],
        "Return the version of the supervisor package in use by supervisord",
    ),
    ("supervisor.getVersion", &["string"], "Return the version of the RPC API used by supervisord"),
    (
        "supervisor.readLog",
        &["string", "int", "int"],
        "Read length bytes from the main log starting at offset",
    ),
    (
        "supervisor.readMainLog",
        &["string", "int", "int"],
        "Read length bytes from the main log starting at offset",
    ),
    (
        "supervisor.readProcessLog",
        &["string", "string", "int", "int"],
        "Read length bytes from name's stdout log starting at offset",
    ),
    (
        "supervisor.readProcessStderrLog",
        &["string", "string", "int", "int"],
        "Read length bytes from name's stderr log starting at offset",
    ),
    (
        "supervisor.readProcessStdoutLog",
        &["string", "string", "int", "int"],
        "Read length bytes from name's stdout log starting at offset",
    ),
    (
        "supervisor.reloadConfig",
        &["array"],
        "Reload the configuration. The result contains three arrays containing names of process groups: added, changed, removed.",
    ),
    (
        "supervisor.removeProcessGroup",
        &["boolean", "string"],
        "Remove a stopped process from the active configuration.",
    ),
    ("supervisor.restart", &["boolean"], "Restart the supervisor process"),
    (
        "supervisor.sendProcessStdin",
        &["boolean", "string", "string"],
        "Send a string of chars to the stdin of the process name.",
    ),
    (
        "supervisor.sendRemoteCommEvent",
        &["boolean", "string", "string"],
        "Send an event that will be received by event listener subprocesses subscribing to the RemoteCommunicationEvent.",
    ),
    ("supervisor.shutdown", &["boolean"], "Shut down the supervisor process"),
    (
        "supervisor.signalAllProcesses",
        &["array", "string"],
        "Send a signal to all processes in the process list",
    ),
    (
        "supervisor.signalProcess",
        &["boolean", "string", "string"],
        "Send an arbitrary UNIX signal to the process named by name",
    ),
    (
        "supervisor.signalProcessGroup",
        &["array", "string", "string"],
        "Send a signal to all processes in the group named 'name'",
    ),
    (
        "supervisor.startAllProcesses",
        &["array", "boolean"],
        "Start all processes listed in the configuration file",
    ),
    ("supervisor.startProcess", &["boolean", "string", "boolean"], "Start a process"),
    (
        "supervisor.startProcessGroup",
        &["array", "string", "boolean"],
        "Start all processes in the group named 'name'",
    ),
    (
        "supervisor.stopAllProcesses",
        &["array", "boolean"],
        "Stop all processes in the process list",
    ),
    ("supervisor.stopProcess", &["boolean", "string", "boolean"], "Stop a process named by name"),
    (
        "supervisor.stopProcessGroup",
        &["array", "string", "boolean"],
        "Stop all processes in the process group named 'name'",
    ),
    (
        "supervisor.tailProcessLog",
        &["array", "string", "int", "int"],
        "Provides a more efficient way to tail the (stdout) log than readProcessStdoutLog(). Returns [string bytes, int offset, bool overflow].",
    ),
    (
        "supervisor.tailProcessStderrLog",
        &["array", "string", "int", "int"],
        "Provides a more efficient way to tail the (stderr) log than readProcessStderrLog(). Returns [string bytes, int offset, bool overflow].",
    ),
    (
        "supervisor.tailProcessStdoutLog",
        &["array", "string", "int", "int"],
        "Provides a more efficient way to tail the (stdout) log than readProcessStdoutLog(). Returns [string bytes, int offset, bool overflow].",
    ),
    ("system.listMethods", &["array"], "Return an array listing the available method names"),
    (
        "system.methodHelp",
        &["string", "string"],
        "Return a string showing the method's documentation",
    ),
    (
        "system.methodSignature",
        &["array", "string"],
        "Return an array describing the method signature in the form [rtype, ptype, ptype...]",
    ),
    (
        "system.multicall",
        &["array", "array"],
        "Process an array of calls, and return an array of results. Calls should be structs of the form {'methodName': string, 'params': array}. Each result will either be a single-item array containing the result value, or a struct of the form {'faultCode': int, 'faultString': string}.",
    ),
];
