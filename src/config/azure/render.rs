//! Rendering: the importer's [`Model`] as a vipmux TOML document, built with `toml_edit` so that
//! the output keeps its comments: the header with the appliance tables to fill in, `FILL IN`
//! placeholders, and what the template could not say (commented members and rules).
//!
//! Tables are appended in document order. A commented block that follows a table's keys is held
//! as pending text and becomes the leading comment of the next table header (or the document's
//! trailing text when no table follows), which is where it prints.

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use super::model::{Common, Fe, LbRule, Model, NatRule, Outbound, Pool, ProbeM};
use super::ImportOptions;
use crate::config::DsrEncapsulation;

/// The column (in the uncommented line) where the notes of the header's placeholders start.
const NOTE_COLUMN: usize = 31;

/// Renders `m`, the load balancer `lb_name`, as a commented TOML configuration.
pub(super) fn render(
    lb_name: &str,
    m: &Model,
    opts: &ImportOptions,
    warnings: &[String],
    notes: &[String],
) -> String {
    let mut out = Out {
        doc: DocumentMut::new(),
        pending: header(lb_name, m, &opts.source),
    };
    for f in &m.frontends {
        frontend(&mut out, f);
    }
    let floating = m.floating_pools();
    for p in &m.pools {
        let enc = floating
            .contains(p.name.as_str())
            .then_some(opts.floating_ip_encapsulation);
        pool(&mut out, p, enc);
    }
    for p in &m.probes {
        probe(&mut out, p);
    }
    for r in &m.lb_rules {
        lb_rule(&mut out, r);
    }
    for r in &m.nat_rules {
        nat_rule(&mut out, r);
    }
    for r in &m.outbound {
        outbound(&mut out, r);
    }
    report(&mut out, warnings, notes);
    out.finish()
}

/// Every warning and note of the import, as comments at the end of the output: what needs the
/// operator is never only on the terminal.
fn report(out: &mut Out, warnings: &[String], notes: &[String]) {
    if warnings.is_empty() && notes.is_empty() {
        return;
    }
    let mut text = String::from(
        "\nLeft for the operator by the import (also printed as warnings and notes):\n",
    );
    for w in warnings {
        text.push_str(&format!("- {w}\n"));
    }
    for n in notes {
        text.push_str(&format!("- note: {n}\n"));
    }
    out.comment(&commented(&text));
}

/// The document being built and the comment text waiting for the next table.
struct Out {
    doc: DocumentMut,
    pending: String,
}

impl Out {
    /// Appends a table to the array of tables `key`, preceded by a blank line and the pending
    /// comment text.
    fn table(&mut self, key: &str) -> &mut Table {
        let mut t = Table::new();
        t.decor_mut()
            .set_prefix(format!("{}\n", std::mem::take(&mut self.pending)));
        let aot = self
            .doc
            .entry(key)
            .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
            .as_array_of_tables_mut()
            .expect("only arrays of tables are rendered");
        aot.push(t);
        let last = aot.len() - 1;
        aot.get_mut(last).expect("just pushed")
    }

    /// Adds comment lines (each ending with a newline) after what was rendered so far.
    fn comment(&mut self, text: &str) {
        self.pending.push_str(text);
    }

    /// The document as text.
    fn finish(mut self) -> String {
        let pending = std::mem::take(&mut self.pending);
        self.doc.set_trailing(pending);
        self.doc.to_string()
    }
}

/// `text` as TOML comment lines (`# ` before each line, `#` alone for an empty one).
fn commented(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "#\n".to_string()
            } else {
                format!("# {}\n", comment_text(l))
            }
        })
        .collect()
}

/// Input text made fit for a `#` comment: control characters (a newline would end the comment,
/// and TOML forbids the others in comments) are written as escapes, so the output stays valid TOML
/// and a name from the template cannot inject a line.
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `table` rendered on its own under the header `[key]` (or `[[key]]` when `array`).
fn standalone(key: &str, table: Table, array: bool) -> String {
    let mut doc = DocumentMut::new();
    if array {
        let mut aot = ArrayOfTables::new();
        aot.push(table);
        doc.insert(key, Item::ArrayOfTables(aot));
    } else {
        doc.insert(key, Item::Table(table));
    }
    doc.to_string()
}

/// Sets `key = value` in `t` with an end-of-line note aligned at [`NOTE_COLUMN`].
fn set_noted(t: &mut Table, key: &str, value: impl Into<Value>, note: &str) {
    let mut value = value.into();
    let width = key.len() + " = ".len() + value.to_string().len();
    let pad = NOTE_COLUMN.saturating_sub(width).max(2);
    let note = comment_text(note);
    value.decor_mut().set_suffix(format!("{:pad$}# {note}", ""));
    t.insert(key, Item::Value(value));
}

/// Sets `key = value` in `t` with an end-of-line note two spaces after the value.
fn set_with_note(t: &mut Table, key: &str, value: impl Into<Value>, note: &str) {
    let mut value = value.into();
    let note = comment_text(note);
    value.decor_mut().set_suffix(format!("  # {note}"));
    t.insert(key, Item::Value(value));
}

/// The commented header: where the file comes from, and the appliance tables Azure has no
/// equivalent of, as placeholders.
fn header(lb_name: &str, m: &Model, source: &str) -> String {
    let mut appliance = Table::new();
    appliance.insert("name", toml_edit::value(lb_name));
    let seed: Value = "0x0".parse().expect("a TOML integer");
    set_noted(
        &mut appliance,
        "hash_seed",
        seed,
        "FILL IN: shared by every MUX of one cluster",
    );
    set_noted(
        &mut appliance,
        "missing_flow",
        "rehash",
        "\"rehash\" | \"drop\"",
    );
    set_noted(
        &mut appliance,
        "no_healthy_backends",
        if m.all_probed_up { "all" } else { "drop" },
        "\"drop\" = AllProbedDown, \"all\" = AllProbedUp",
    );
    let mut dataplane = Table::new();
    set_noted(
        &mut dataplane,
        "dpdk_profile",
        "FILL IN",
        "EAL arguments, ports, queues, cores",
    );
    dataplane.insert("workers", toml_edit::value(1));
    let mut interface = Table::new();
    interface.insert("name", toml_edit::value("FILL IN"));
    set_noted(
        &mut interface,
        "port",
        "FILL IN",
        "DPDK port name from the profile",
    );
    set_noted(
        &mut interface,
        "address",
        "FILL IN",
        "the appliance's own address, e.g. \"10.0.0.2/24\"",
    );
    set_noted(&mut interface, "gateway", "FILL IN", "optional");
    if m.has_ipv6() {
        set_noted(
            &mut interface,
            "address6",
            "FILL IN",
            "own IPv6 address, e.g. \"fd00::2/64\"",
        );
        set_noted(&mut interface, "gateway6", "FILL IN", "optional");
    }

    let mut h = commented(&format!(
        "vipmux configuration imported by `vipmux import-azure` from load balancer {} ({source}).\n\
         Fill in every `FILL IN`, then run `vipmux check` on this file.\n\
         \n\
         The appliance tables have no Azure equivalent:",
        Value::from(lb_name)
    ));
    h.push_str(&commented(&standalone("appliance", appliance, false)));
    h.push_str("#\n");
    h.push_str(&commented(&standalone("dataplane", dataplane, false)));
    h.push_str("#\n");
    h.push_str(&commented(&standalone("interfaces", interface, true)));
    h.push_str(&commented(
        "\n\
         Frontends have no `interface`: the VIPs are routed to the MUX. Add\n\
         `interface = \"NAME\"` to a frontend for the MUX to answer ARP for it.",
    ));
    h
}

/// A `[[frontends]]` table; a missing address becomes a commented placeholder.
fn frontend(out: &mut Out, f: &Fe) {
    let t = out.table("frontends");
    t.insert("name", toml_edit::value(&f.name));
    match (f.addr, &f.missing) {
        (Some(a), _) => {
            t.insert("address", toml_edit::value(a.to_string()));
        }
        (None, why) => {
            let mut placeholder = Table::new();
            placeholder.insert("address", toml_edit::value("FILL IN"));
            let text = format!(
                "FILL IN: {}; or rerun with --frontend-address {}=IP\n{}",
                why.as_deref().unwrap_or("address unknown"),
                f.name,
                placeholder
            );
            out.comment(&commented(&text));
        }
    }
}

/// A `[[backend_pools]]` table; `encapsulation` is set for pools that serve floating-IP rules.
/// Members without an address (NIC IP configurations) become commented placeholders.
fn pool(out: &mut Out, p: &Pool, encapsulation: Option<DsrEncapsulation>) {
    let t = out.table("backend_pools");
    t.insert("name", toml_edit::value(&p.name));
    if let Some(enc) = encapsulation {
        let enc = match enc {
            DsrEncapsulation::None => "none",
            DsrEncapsulation::Ipip => "ipip",
            DsrEncapsulation::Gue => "gue",
        };
        set_with_note(
            t,
            "dsr_encapsulation",
            enc,
            if enc == "none" {
                "serves floating-IP rules, delivered unencapsulated as in Azure: the members must be on-link of an interface"
            } else {
                "serves floating-IP rules; the members decapsulate"
            },
        );
    }
    let mut members = Array::new();
    for mem in &p.members {
        let mut m = InlineTable::new();
        m.insert("name", Value::from(&mem.name));
        m.insert("address", Value::from(mem.addr.to_string()));
        if let Some(s) = mem.admin_state {
            m.insert("admin_state", Value::from(s));
        }
        let mut v = Value::InlineTable(m);
        v.decor_mut().set_prefix("\n  ");
        members.push_formatted(v);
    }
    let mut trailing = String::new();
    for pending in &p.pending {
        let mut m = InlineTable::new();
        m.insert("name", Value::from(&pending.name));
        m.insert("address", Value::from("FILL IN"));
        let why = if pending.what.is_empty() {
            "the input names no member of this pool; add its members".to_string()
        } else {
            format!(
                "{} is a member; its address is not in the input",
                comment_text(&pending.what)
            )
        };
        trailing.push_str(&format!(
            "\n  # FILL IN: {why}\n  # {},",
            comment_text(&Value::InlineTable(m).to_string())
        ));
    }
    if !members.is_empty() || !trailing.is_empty() {
        members.set_trailing_comma(true);
        trailing.push('\n');
        members.set_trailing(trailing);
    }
    t.insert("members", toml_edit::value(members));
}

/// A `[[probes]]` table.
fn probe(out: &mut Out, p: &ProbeM) {
    let t = out.table("probes");
    t.insert("name", toml_edit::value(&p.name));
    t.insert("protocol", toml_edit::value(p.protocol));
    if let Some(port) = p.port {
        t.insert("port", toml_edit::value(i64::from(port)));
    }
    if let Some(rp) = &p.request_path {
        t.insert("request_path", toml_edit::value(rp));
    }
    if let Some(i) = p.interval {
        t.insert("interval_seconds", toml_edit::value(i64::from(i)));
    }
    if let Some(n) = p.threshold {
        t.insert("probe_threshold", toml_edit::value(i64::from(n)));
    }
}

/// A `[[load_balancing_rules]]` table.
fn lb_rule(out: &mut Out, r: &LbRule) {
    let t = out.table("load_balancing_rules");
    head(t, &r.c);
    if let Some(p) = r.frontend_port {
        if p == 0 && r.c.protocol == "all" {
            set_with_note(t, "frontend_port", i64::from(p), "HA ports");
        } else {
            t.insert("frontend_port", toml_edit::value(i64::from(p)));
        }
    }
    if let Some(p) = r.c.backend_port {
        t.insert("backend_port", toml_edit::value(i64::from(p)));
    }
    t.insert("backend_pool", toml_edit::value(&r.pool));
    if let Some(p) = &r.probe {
        t.insert("probe", toml_edit::value(p));
    }
    if let Some(d) = r.distribution {
        t.insert("load_distribution", toml_edit::value(d));
    }
    tail(t, &r.c);
}

/// An `[[inbound_nat_rules]]` table; a single-VM rule is written commented out, with what the
/// operator must do to enable it.
fn nat_rule(out: &mut Out, r: &NatRule) {
    match r {
        NatRule::Range {
            c,
            start,
            end,
            pool,
        } => {
            let t = out.table("inbound_nat_rules");
            head(t, c);
            if let Some(s) = start {
                t.insert("frontend_port_range_start", toml_edit::value(i64::from(*s)));
            }
            if let Some(e) = end {
                t.insert("frontend_port_range_end", toml_edit::value(i64::from(*e)));
            }
            t.insert("backend_pool", toml_edit::value(pool));
            if let Some(p) = c.backend_port {
                t.insert("backend_port", toml_edit::value(i64::from(p)));
            }
            tail(t, c);
        }
        NatRule::Single {
            c,
            frontend_port,
            nic,
            target,
        } => single_nat_rule(out, c, *frontend_port, nic.as_deref(), target.as_ref()),
    }
}

/// A single-VM NAT rule: a table when its target member is known, else commented out with
/// what the operator must do.
fn single_nat_rule(
    out: &mut Out,
    c: &Common,
    frontend_port: Option<u32>,
    nic: Option<&str>,
    target: Option<&(String, String)>,
) {
    let mut t = Table::new();
    head(&mut t, c);
    if let Some(p) = frontend_port {
        t.insert("frontend_port", toml_edit::value(i64::from(p)));
    }
    let mut it = InlineTable::new();
    let (pool, member) = match target {
        Some((p, m)) => (p.as_str(), m.as_str()),
        None => (
            "FILL IN",
            nic.and_then(|n| n.split('/').next()).unwrap_or("FILL IN"),
        ),
    };
    it.insert("pool", Value::from(pool));
    it.insert("member", Value::from(member));
    t.insert("target", toml_edit::value(it));
    if let Some(p) = c.backend_port {
        t.insert("backend_port", toml_edit::value(i64::from(p)));
    }
    tail(&mut t, c);
    if target.is_some() {
        let slot = out.table("inbound_nat_rules");
        let decor = slot.decor().clone();
        *slot = t;
        *slot.decor_mut() = decor;
        return;
    }
    let what = nic
        .map(|n| format!("NIC IP configuration {n}"))
        .unwrap_or_else(|| "one VM's NIC".to_string());
    out.comment(&format!(
        "\n{}",
        commented(&format!(
            "FILL IN: this rule targets {what}; add that VM to a pool as a member, set\n\
             `target` and uncomment the rule.\n{}",
            standalone("inbound_nat_rules", t, true)
        ))
    ));
}

/// An `[[outbound_rules]]` table.
fn outbound(out: &mut Out, r: &Outbound) {
    let t = out.table("outbound_rules");
    t.insert("name", toml_edit::value(&r.name));
    t.insert(
        "frontends",
        toml_edit::value(r.frontends.iter().map(String::as_str).collect::<Array>()),
    );
    t.insert("backend_pool", toml_edit::value(&r.pool));
    if let Some(p) = r.protocol {
        t.insert("protocol", toml_edit::value(p));
    }
    if let Some(p) = r.ports {
        t.insert("allocated_outbound_ports", toml_edit::value(i64::from(p)));
    }
    if let Some(i) = r.idle {
        t.insert("idle_timeout_minutes", toml_edit::value(i64::from(i)));
    }
    if r.reset {
        t.insert("enable_tcp_reset", toml_edit::value(true));
    }
}

/// The name, frontend and protocol of a rule.
fn head(t: &mut Table, c: &Common) {
    t.insert("name", toml_edit::value(&c.name));
    t.insert("frontend", toml_edit::value(&c.frontend));
    t.insert("protocol", toml_edit::value(c.protocol));
}

/// The floating-IP, idle-timeout and TCP-reset settings of a rule.
fn tail(t: &mut Table, c: &Common) {
    if c.floating {
        t.insert("enable_floating_ip", toml_edit::value(true));
    }
    if let Some(i) = c.idle {
        t.insert("idle_timeout_minutes", toml_edit::value(i64::from(i)));
    }
    if c.reset {
        t.insert("enable_tcp_reset", toml_edit::value(true));
    }
}
