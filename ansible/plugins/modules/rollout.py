#!/usr/bin/python
# -*- coding: utf-8 -*-
# baton.fleet.rollout: runs `baton rollout --json` from the controller and reports what it did.
# Standard library only.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rollout
short_description: Upgrade a service across nodes with baton, one node at a time
version_added: "0.2.0"
description:
  - Runs C(baton rollout --json) on the controller against the baton agents of the given nodes,
    in the given order. Every node is backed up, stopped, swapped, migrated, started and verified;
    a node that fails is rolled back to exactly where it was and the rollout stops there.
  - Builds the rollout file from I(service), I(version), I(artifact), I(nodes) and I(endpoints),
    or uses a given I(rollout_file).
  - In check mode it runs C(baton plan), the dry run. Every agent is asked what a pre-flight
    would find, which nodes would be upgraded, and every reason the rollout would be refused
    (the task then fails with them). Nothing is changed anywhere.
  - "Run it once, on the controller: C(run_once) and C(delegate_to: localhost)."
options:
  baton:
    description: The baton binary on the controller.
    type: path
    default: baton
  rollout_file:
    description:
      - An existing rollout file. Mutually exclusive with I(service), I(version), I(artifact),
        I(nodes) and I(endpoints).
    type: path
  service:
    description: The service name the agents know.
    type: str
  version:
    description: What the new binary's C(--version) prints.
    type: str
  artifact:
    description: The new binary, on the controller. Mutually exclusive with I(catalog).
    type: path
  catalog:
    description:
      - A release catalog on the controller (see the baton README); I(version) may then be a
        range such as C(~1.2.0), resolved to the highest release, and an upgrade across several
        minor versions goes one minor at a time.
    type: path
  rehearse:
    description: Migrate a scratch copy of each database with the new binary first.
    type: bool
    default: false
  restore_shared:
    description: When only the dump can undo a migration of a database other nodes use.
    type: str
    choices: [refuse, stop-group]
  allow_downgrade:
    description: Allow a version one minor below the highest ever deployed (C(--allow-downgrade)).
    type: bool
    default: false
  restore_dump:
    description: A downgrade restores this dump, taken on the node while that version ran.
    type: path
  jump:
    description: With a catalog, one rollout across several minor versions, in maintenance style.
    type: bool
    default: false
  sha256:
    description: Refuse unless the artifact has this SHA-256.
    type: str
  nodes:
    description: Node names, in the order they are upgraded (usually C(ansible_play_hosts_all)).
    type: list
    elements: str
  endpoints:
    description: The agents' ZeroMQ endpoints, one per node, in the same order.
    type: list
    elements: str
  public_keys:
    description:
      - The agents' CURVE public keys (Z85, from C(baton keygen)), one per node, in the same
        order; an agent that cannot prove its key is refused before anything is sent to it.
      - Required with I(coordinator_key).
    type: list
    elements: str
  coordinator_key:
    description:
      - The coordinator's CURVE secret key file on the controller; its public key must be in
        every agent's authorized keys (role C(baton.fleet.agent), I(baton_agent_authorized_keys)).
    type: path
  insecure:
    description: Plain text instead of CURVE (both sides must say so; for local experiments).
    type: bool
    default: false
  connect_timeout:
    description: How long an agent may take to answer Hello (a duration, e.g. C(5s)).
    type: str
  step_timeout:
    description: The longest any one step may take (e.g. C(45m)).
    type: str
  liveness:
    description: A node silent this long is lost (e.g. C(30s)).
    type: str
  batches:
    description: Nodes per batch, in order, each a count or a percentage ("25%"); the last
      repeats (baton's C(batches)); one node at a time when not given.
    type: list
    elements: raw
  max_unavailable:
    description: At most this many nodes (or "N%") down at once (baton's C(max_unavailable)).
    type: raw
  on_failure:
    description: What a failed node does to the rest (baton's C(on_failure)).
    type: str
    choices: [halt, rollback-all, continue]
  max_failures:
    description: With on_failure continue, how many nodes (or "N%") may fail.
    type: raw
  pause_after:
    description: Batches after which the rollout pauses for C(baton resume) (C(canary), or a
      batch number).
    type: list
    elements: raw
  healthy_deadline:
    description: How long a started node has to turn healthy (a duration).
    type: str
  progress_deadline:
    description: How long the whole rollout may go without a node finishing (a duration).
    type: str
  min_healthy_time:
    description: How long each node must stay healthy after its first good probe (overrides the agents').
    type: str
requirements:
  - baton on the controller, baton-agent on every node (role C(baton.fleet.agent)).
author:
  - baton developers
"""

EXAMPLES = r"""
- name: Upgrade gamesrv to 1.1.0, node by node
  baton.fleet.rollout:
    baton: /usr/local/bin/baton
    service: gamesrv
    version: 1.1.0
    artifact: dist/gamesrv-1.1.0
    nodes: "{{ ansible_play_hosts_all }}"
    endpoints: "{{ ansible_play_hosts_all | map('extract', hostvars, 'baton_agent_endpoint') | list }}"
    min_healthy_time: 10s
  run_once: true
  delegate_to: localhost
  register: upgrade

- name: Use a rollout file kept with the playbook
  baton.fleet.rollout:
    rollout_file: rollouts/gamesrv-1.1.0.yml
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
rc:
  description: baton's exit code (0 done, 1 bad input, 2 refused, 3 rolled back, 4 needs attention).
  returned: always
  type: int
rollout_id:
  description: The rollout's id, as the agents record it (C(journalctl BATON_ROLLOUT_ID=...)).
  returned: when baton started the rollout
  type: str
outcome:
  description: What the exit code means, in words.
  returned: always
  type: str
summary:
  description: baton's closing line(s).
  returned: always
  type: str
nodes:
  description: Per node, in rollout order.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: The node., type: str}
    version_before: {description: Version before the rollout (from its Hello)., type: str}
    version_after: {description: Version running afterwards, as far as baton knows., type: str}
    upgraded: {description: This run upgraded the node., type: bool}
    rolled_back: {description: The node failed and was rolled back., type: bool}
    would_upgrade: {description: Check mode only, the node is not on the version., type: bool}
    steps:
      description: Each step with its outcome and duration.
      type: list
      elements: dict
      sample: [{step: dump, ok: true, ms: 93, message: "/var/backups/baton/gamesrv/gamesrv+r1.dump"}]
"""

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

OUTCOMES = {
    0: "done: every node runs the target version",
    1: "bad rollout file or usage",
    2: "refused before any change: nothing was stopped",
    3: "a node failed and was rolled back to where it was",
    4: "a node needs attention: its rollback failed or it was lost (see baton status)",
}


def yaml_scalar(value):
    """A YAML double-quoted scalar: JSON's string syntax is valid YAML."""
    return json.dumps(str(value))


def yaml_item(value):
    """A count stays a number (batches: [1, 2]); anything else is a quoted string ("25%")."""
    if isinstance(value, bool):
        return yaml_scalar(value)
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return str(int(value))
    return yaml_scalar(value)


def write_rollout_file(params, directory):
    lines = [
        "service: %s" % yaml_scalar(params["service"]),
        "version: %s" % yaml_scalar(params["version"]),
    ]
    if params["catalog"]:
        lines.append("catalog: %s" % yaml_scalar(os.path.abspath(params["catalog"])))
    else:
        lines.append("artifact: %s" % yaml_scalar(os.path.abspath(params["artifact"])))
    if params["rehearse"]:
        lines.append("rehearse: true")
    if params["restore_shared"]:
        lines.append("restore_shared: %s" % yaml_scalar(params["restore_shared"]))
    if params["sha256"]:
        lines.append("sha256: %s" % yaml_scalar(params["sha256"]))
    timeouts = [(k, params[p]) for k, p in (("connect", "connect_timeout"), ("step", "step_timeout"))
                if params[p]]
    if timeouts:
        lines.append("timeouts:")
        lines.extend("  %s: %s" % (k, yaml_scalar(v)) for k, v in timeouts)
    for key in ("liveness", "min_healthy_time", "healthy_deadline", "progress_deadline",
                "on_failure"):
        if params[key]:
            lines.append("%s: %s" % (key, yaml_scalar(params[key])))
    for key in ("max_unavailable", "max_failures"):
        if params[key] is not None:
            lines.append("%s: %s" % (key, yaml_item(params[key])))
    for key in ("batches", "pause_after"):
        if params[key]:
            lines.append("%s: [%s]" % (key, ", ".join(yaml_item(v) for v in params[key])))
    if params["insecure"]:
        lines.append("insecure: true")
    else:
        lines.append("curve:")
        lines.append("  secret_key: %s" % yaml_scalar(os.path.abspath(params["coordinator_key"])))
    lines.append("nodes:")
    keys = params["public_keys"] or [None] * len(params["nodes"])
    for name, endpoint, key in zip(params["nodes"], params["endpoints"], keys):
        lines.append("  - name: %s" % yaml_scalar(name))
        lines.append("    endpoint: %s" % yaml_scalar(endpoint))
        if key:
            lines.append("    public_key: %s" % yaml_scalar(key))
    path = os.path.join(directory, "rollout.yml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def read_events(stdout):
    """baton --json prints one JSON object per line; anything else is kept as text."""
    events, other = [], []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            other.append(line)
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, other


def node_results(events, target):
    nodes, order = {}, []

    def node(name):
        if name not in nodes:
            nodes[name] = {"name": name, "version_before": "", "version_after": "",
                           "upgraded": False, "rolled_back": False, "steps": []}
            order.append(name)
        return nodes[name]

    # baton asks every node at once, so events come in any order: the start event gives the
    # rollout order (file order), and results are listed in it.
    for e in events:
        if e.get("event") == "start":
            for name in e.get("nodes") or []:
                node(name)
            break
    for e in events:
        kind, name = e.get("event"), e.get("node")
        # A rollout that goes one minor at a time starts once per hop, each with its version.
        if kind == "start" and e.get("version"):
            target = e["version"]
        # Progress lines come in any order and say nothing of the result.
        if not name or kind == "progress":
            continue
        n = node(name)
        if kind == "check" and e.get("phase") == "hello" and e.get("ok"):
            n["version_before"] = n["version_after"] = e.get("version", "")
        elif kind == "step":
            n["steps"].append({k: e.get(k) for k in ("step", "ok", "ms", "message")})
            if e.get("step") == "commit" and e.get("ok"):
                n["upgraded"] = True
                n["version_after"] = target
        elif kind == "rollback":
            n["steps"].append({k: e.get(k) for k in ("step", "ok", "ms", "message")})
            n["rolled_back"] = bool(e.get("ok"))
        elif kind == "plan_node":
            n["version_before"] = n["version_after"] = e.get("version", "")
            n["unit_state"] = e.get("active_state", "")
            n["would_upgrade"] = bool(e.get("upgrade"))
            n["problems"] = e.get("problems") or []
    return [nodes[name] for name in order]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            baton=dict(type="path", default="baton"),
            rollout_file=dict(type="path"),
            service=dict(type="str"),
            version=dict(type="str"),
            artifact=dict(type="path"),
            catalog=dict(type="path"),
            rehearse=dict(type="bool", default=False),
            restore_shared=dict(type="str", choices=["refuse", "stop-group"]),
            allow_downgrade=dict(type="bool", default=False),
            restore_dump=dict(type="path"),
            jump=dict(type="bool", default=False),
            sha256=dict(type="str"),
            nodes=dict(type="list", elements="str"),
            endpoints=dict(type="list", elements="str"),
            public_keys=dict(type="list", elements="str", no_log=False),
            coordinator_key=dict(type="path", no_log=False),
            insecure=dict(type="bool", default=False),
            connect_timeout=dict(type="str"),
            step_timeout=dict(type="str"),
            liveness=dict(type="str"),
            min_healthy_time=dict(type="str"),
            batches=dict(type="list", elements="raw"),
            max_unavailable=dict(type="raw"),
            on_failure=dict(type="str", choices=["halt", "rollback-all", "continue"]),
            max_failures=dict(type="raw"),
            pause_after=dict(type="list", elements="raw"),
            healthy_deadline=dict(type="str"),
            progress_deadline=dict(type="str"),
        ),
        mutually_exclusive=[("rollout_file", x) for x in
                            ("service", "version", "artifact", "catalog", "nodes", "endpoints",
                             "batches", "max_unavailable", "on_failure", "max_failures",
                             "pause_after", "healthy_deadline", "progress_deadline")]
        + [("artifact", "catalog")],
        required_one_of=[("rollout_file", "service")],
        required_together=[("service", "version", "nodes", "endpoints")],
        supports_check_mode=True,
    )
    p = module.params
    if p["nodes"] is not None and len(p["nodes"]) != len(p["endpoints"]):
        module.fail_json(msg="nodes and endpoints must have the same length (%d and %d)"
                         % (len(p["nodes"]), len(p["endpoints"])))
    if p["nodes"] is not None and not p["insecure"]:
        if not p["coordinator_key"] or p["public_keys"] is None:
            module.fail_json(msg="coordinator_key and public_keys are required (CURVE), "
                                 "or insecure: true for plain text")
        if len(p["public_keys"]) != len(p["nodes"]):
            module.fail_json(msg="nodes and public_keys must have the same length (%d and %d)"
                             % (len(p["nodes"]), len(p["public_keys"])))
    if p["service"] is not None and not (p["artifact"] or p["catalog"]):
        module.fail_json(msg="one of artifact or catalog is required with service")
    baton = p["baton"]
    if os.sep not in baton:
        baton = module.get_bin_path(baton, required=True)

    tmp = tempfile.mkdtemp(prefix="baton-rollout-")
    try:
        path = p["rollout_file"] or write_rollout_file(p, tmp)
        target = p["version"]
        if target is None:  # from the given file: the one top-level "version:" line
            with open(path) as f:
                for line in f:
                    if line.startswith("version:"):
                        target = line.split(":", 1)[1].strip().strip("'\"")
        verb = "plan" if module.check_mode else "rollout"
        argv = [baton, verb, path, "--json"]
        if p["allow_downgrade"]:
            argv.append("--allow-downgrade")
        if p["restore_dump"]:
            argv += ["--restore-dump", p["restore_dump"]]
        if p["jump"]:
            argv.append("--jump")
        rc, out, err = module.run_command(argv)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    events, other = read_events(out)
    nodes = node_results(events, target)
    summary = [e for e in events if e.get("event") == "summary"]
    errors = [e.get("message", "") for e in events if e.get("event") == "error"]
    # The summary's first line, then its details (schema 2 on; schema 1 had one message).
    text = ("\n".join([summary[-1].get("message", "")] + summary[-1].get("details", []))
            if summary else "\n".join(errors + other + [err.strip()]))
    starts = [e for e in events if e.get("event") == "start"]
    result = dict(rc=rc, outcome=OUTCOMES.get(rc, "unknown exit code %d" % rc), summary=text,
                  nodes=nodes, rollout_id=starts[0].get("rollout", "") if starts else "")

    if module.check_mode:
        if rc != 0:
            problems = ["%s: %s" % (n["name"], p) for n in nodes for p in n.get("problems", [])]
            module.fail_json(msg="baton plan: %s%s" % (text or err.strip(),
                                                     "".join("; " + p for p in problems)),
                             **result)
        would = [n["name"] for n in nodes if n.get("would_upgrade")]
        result["changed"] = bool(would)
        result["summary"] = ("would upgrade %s to %s" % (", ".join(would), target) if would
                             else "every node already runs %s" % target)
        module.exit_json(**result)

    result["changed"] = any(n["upgraded"] for n in nodes)
    if rc != 0:
        module.fail_json(msg="baton rollout: %s (exit %d): %s" % (result["outcome"], rc, text),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
