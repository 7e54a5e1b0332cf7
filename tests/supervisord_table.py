#!/usr/bin/env python3
"""supervisord's own view of a configuration, printed as `kahi daemon --check --json` prints
Kahi's: one object per process (group, name, command as argv, user, priority, autostart).

Reads FILE with supervisor.options.ServerOptions.process_config, as supervisord does at start,
and starts nothing. The priority is the one that orders the process: its own, or its pool's
for an event listener (a pool is started and stopped as one, at the pool's priority). A
command that cannot be split into words is shown whole, as one word.

Usage: supervisord_table.py FILE. Exit 0 with the table, 2 with {"error": ...} when
supervisord refuses the file.
"""
import json
import pwd
import shlex
import sys

from supervisor.options import EventListenerPoolConfig, ServerOptions


def main(path):
    opts = ServerOptions()
    opts.configfile = path
    try:
        opts.process_config(do_usage=False)
    except ValueError as e:
        print(json.dumps({"error": str(e)}))
        return 2
    rows = []
    for group in opts.process_group_configs:
        pool = isinstance(group, EventListenerPoolConfig)
        for p in group.process_configs:
            user = pwd.getpwuid(p.uid).pw_name if p.uid is not None else None
            try:
                argv = shlex.split(p.command)
            except ValueError:
                # supervisord fails each spawn ("can't parse command"); Kahi keeps it whole.
                argv = [p.command]
            rows.append({
                "group": group.name,
                "name": p.name,
                "command": argv,
                "user": user,
                "priority": group.priority if pool else p.priority,
                "autostart": p.autostart,
            })
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
