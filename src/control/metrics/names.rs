//! Metric names (docs/design.md §3.9), in one place so the appliance, the docs and the tests
//! agree.

/// Counter: packets received from the ports.
pub const PACKETS_RECEIVED: &str = "vipmux_packets_received_total";
/// Counter: packets transmitted on the ports.
pub const PACKETS_TRANSMITTED: &str = "vipmux_packets_transmitted_total";
/// Counter `{reason}`: packets dropped.
pub const DROPS: &str = "vipmux_drops_total";
/// Counter `{outcome}`: ICMP errors about flows, by what the data path did with them.
pub const ICMP_ERRORS: &str = "vipmux_icmp_errors_total";
/// Counter `{frontend,rule}`: packets matched by a rule.
pub const RULE_PACKETS: &str = "vipmux_rule_packets_total";
/// Counter `{frontend,rule}`: bytes matched by a rule.
pub const RULE_BYTES: &str = "vipmux_rule_bytes_total";
/// Counter `{frontend,rule}`: TCP SYNs matched by a rule.
pub const RULE_SYNS: &str = "vipmux_rule_syns_total";
/// Counter `{frontend,rule}`: flows created on a rule.
pub const RULE_NEW_FLOWS: &str = "vipmux_rule_new_flows_total";
/// Gauge `{frontend,rule}`: active flows on a rule.
pub const RULE_ACTIVE_FLOWS: &str = "vipmux_rule_active_flows";
/// Counter `{frontend,rule}`: flows of a rule removed by its idle timeout.
pub const RULE_IDLE_EXPIRED_FLOWS: &str = "vipmux_rule_idle_expired_flows_total";
/// Counter `{frontend,rule}`: later TCP packets of such flows (dropped as `idle_expired`).
pub const RULE_IDLE_LATE_PACKETS: &str = "vipmux_rule_idle_late_packets_total";
/// Counter `{pool,member}`: flows sent to a member.
pub const MEMBER_NEW_FLOWS: &str = "vipmux_member_new_flows_total";
/// Gauge `{pool,member}`: active flows to a member.
pub const MEMBER_ACTIVE_FLOWS: &str = "vipmux_member_active_flows";
/// Counter `{pool,member}`: client packets forwarded to a member.
pub const MEMBER_PACKETS: &str = "vipmux_member_packets_total";
/// Counter `{pool,member}`: of those, TCP SYNs (without ACK).
pub const MEMBER_SYNS: &str = "vipmux_member_syns_total";
/// Counter `{pool,member}`: NAT replies from a member forwarded back to clients.
pub const MEMBER_REPLIES: &str = "vipmux_member_replies_total";
/// Gauge `{pool,member}`: 1 if the member takes new flows, else 0.
pub const MEMBER_HEALTH: &str = "vipmux_member_health";
/// Gauge `{rule,pool,member}`: SNAT ports allocated to a member by an outbound rule.
pub const SNAT_ALLOCATED_PORTS: &str = "vipmux_snat_allocated_ports";
/// Gauge `{rule,pool,member}`: SNAT ports in use.
pub const SNAT_USED_PORTS: &str = "vipmux_snat_used_ports";
/// Gauge `{rule,pool,member}`: outbound connections waiting for their first answer.
pub const SNAT_PENDING: &str = "vipmux_snat_connections_pending";
/// Counter `{worker,result}`: polls (loop iterations and idle rx-only rounds; `busy`: received
/// frames, `empty`).
pub const WORKER_POLLS: &str = "vipmux_worker_polls_total";
/// Counter `{worker}`: seconds spent in busy poll-loop iterations.
pub const WORKER_BUSY_SECONDS: &str = "vipmux_worker_busy_seconds_total";
/// Gauge `{worker}`: seconds of the longest poll-loop iteration that received frames.
pub const WORKER_MAX_BUSY_ITERATION: &str = "vipmux_worker_max_busy_iteration_seconds";
/// Gauge: mbufs of the packet pool in use.
pub const MBUFS_IN_USE: &str = "vipmux_mbufs_in_use";
/// Counter `{interface}`: frames the port's device dropped because its rx queues were full
/// (`rte_eth_stats.imissed`).
pub const PORT_RX_MISSED: &str = "vipmux_port_rx_missed_total";
/// Counter `{interface}`: frames the port could not receive for want of an mbuf
/// (`rte_eth_stats.rx_nombuf`, the packet pool was empty).
pub const PORT_RX_NOMBUF: &str = "vipmux_port_rx_nombuf_total";
/// Counter `{interface}`: erroneous frames received (`rte_eth_stats.ierrors`).
pub const PORT_RX_ERRORS: &str = "vipmux_port_rx_errors_total";
/// Counter `{interface}`: failed transmissions (`rte_eth_stats.oerrors`).
pub const PORT_TX_ERRORS: &str = "vipmux_port_tx_errors_total";
/// Counter `{interface}`: times the port's link went down (a memif peer that went away).
pub const PORT_LINK_DOWNS: &str = "vipmux_port_link_down_total";
/// Counter `{interface}`: times the port's link came back up.
pub const PORT_LINK_UPS: &str = "vipmux_port_link_up_total";
/// Counter `{worker,direction}`: frames handed between workers (`sent` to their owner,
/// `received` from another worker, `dropped` on a full ring).
pub const WORKER_HANDOFFS: &str = "vipmux_worker_handoffs_total";
/// Counter `{worker}`: transmit back-pressure episodes (a tx queue refused frames; the
/// worker kept them and stopped receiving until they were sent or freed at the bound).
pub const WORKER_TX_BLOCKED: &str = "vipmux_worker_tx_blocked_total";
/// Counter `{worker}`: seconds tx queues held refused frames (summed over queues).
pub const WORKER_TX_BLOCKED_SECONDS: &str = "vipmux_worker_tx_blocked_seconds_total";
/// Counter `{rule,pool,member,state}`: outbound connections by result (`successful`, `failed`).
pub const SNAT_CONNECTIONS: &str = "vipmux_snat_connections_total";
/// Gauge: 1 while the appliance forwards traffic.
pub const FORWARDING: &str = "vipmux_forwarding";
/// Gauge: configuration generation (1 after start, +1 per reload).
pub const CONFIG_GENERATION: &str = "vipmux_config_generation";
/// Gauge `{frontend}`: 1 while the BGP daemon announces the VIP.
pub const BGP_ANNOUNCED: &str = "vipmux_bgp_announced";
/// Gauge `{peer}`: 1 while the BGP session with the peer is up.
pub const BGP_SESSION_UP: &str = "vipmux_bgp_session_up";
/// Gauge: 1 while draining.
pub const DRAINING: &str = "vipmux_draining";
/// Gauge `{frontend_ip,frontend_port,protocol}`: Azure's data path availability
/// (`VipAvailability`): 1 while a new connection to the frontend would reach a member.
pub const LB_VIP_AVAILABILITY: &str = "vipmux_lb_vip_availability";
/// Gauge `{frontend_ip,frontend_port,backend_ip,backend_port,protocol}`: Azure's health probe
/// status (`DipAvailability`): 1 while the member takes new flows of the rule.
pub const LB_DIP_AVAILABILITY: &str = "vipmux_lb_dip_availability";
/// Counter `{frontend_ip,frontend_port,protocol,direction}`: Azure's packet count.
pub const LB_PACKETS: &str = "vipmux_lb_packets_total";
/// Counter `{frontend_ip,frontend_port,protocol,direction}`: Azure's byte count.
pub const LB_BYTES: &str = "vipmux_lb_bytes_total";
/// Counter `{frontend_ip,frontend_port,protocol,direction}`: Azure's SYN count.
pub const LB_SYNS: &str = "vipmux_lb_syns_total";
