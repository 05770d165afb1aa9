//! Checks `cluster:` and works out what every configuration file of the cluster needs:
//! each node's name, address, board and MAC, each board's Slurm node list, the LAN's
//! netmask and the head's DHCP pool. Templates see the result as `cluster`.

use super::checker::Checker;
use super::error::RecipeError;
use super::model::Recipe;
use serde::Serialize;
use std::net::Ipv4Addr;

/// A cluster, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterPlan {
    pub name: String,
    /// The LAN's network address, prefix length and netmask (`192.168.5.0`, 24,
    /// `255.255.255.0`), and the two together (`192.168.5.0/24`).
    pub network: String,
    pub prefix: u8,
    pub netmask: String,
    pub cidr: String,
    /// The head's address and name.
    pub head: String,
    pub head_name: String,
    /// Every compute node, in order.
    pub nodes: Vec<NodePlan>,
    /// Every board nodes are made of, with its nodes as a Slurm host list.
    pub boards: Vec<BoardPlan>,
    /// The first and last node address: the head's DHCP pool.
    pub pool_first: String,
    pub pool_last: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePlan {
    pub name: String,
    pub address: String,
    pub board: String,
    /// Lower-case `aa:bb:cc:dd:ee:ff`, when known.
    pub mac: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardPlan {
    pub name: String,
    pub cpus: u32,
    /// Slurm's RealMemory: MiB.
    pub memory_mib: u64,
    /// Its nodes as Slurm writes a host list (`minihpc[01-08]`), empty when it has none.
    pub hostlist: String,
}

/// Checks `cluster:`; `None` when the recipe has none.
pub fn cluster(recipe: &Recipe, ck: &Checker) -> Result<Option<ClusterPlan>, RecipeError> {
    let Some(c) = &recipe.cluster else {
        return Ok(None);
    };
    let name = c.name.clone().ok_or_else(|| {
        ck.err(
            "cluster.name",
            "missing; name the cluster (`minihpc`): Slurm's ClusterName and the nodes' prefix",
        )
    })?;
    if !is_host_label(&name) || name.ends_with(|c: char| c.is_ascii_digit()) {
        return Err(ck.err(
            "cluster.name",
            format!("`{name}` cannot name hosts; use lower-case letters, digits and `-`, starting with a letter and not ending in a digit"),
        ));
    }
    let cidr = c
        .network
        .clone()
        .ok_or_else(|| ck.err("cluster.network", "missing; give the cluster LAN as `192.168.5.0/24`"))?;
    let (network, prefix) = parse_cidr(&cidr).map_err(|m| ck.err("cluster.network", m))?;
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    let inside = |a: Ipv4Addr| u32::from(a) & mask == u32::from(network);
    let broadcast = Ipv4Addr::from(u32::from(network) | !mask);
    let address = |field: &str, text: &str| -> Result<Ipv4Addr, RecipeError> {
        let a: Ipv4Addr = text
            .parse()
            .map_err(|_| ck.err(field, format!("`{text}` is not an IPv4 address")))?;
        if !inside(a) || a == network || a == broadcast {
            return Err(ck.err(field, format!("{a} is not a host address of {network}/{prefix}")));
        }
        Ok(a)
    };
    let head_text = c.head.clone().ok_or_else(|| {
        ck.err(
            "cluster.head",
            "missing; give the head's address on the cluster LAN (`192.168.5.101`)",
        )
    })?;
    let head = address("cluster.head", &head_text)?;
    let first = match &c.first_node {
        Some(t) => address("cluster.first_node", t)?,
        None => Ipv4Addr::from(u32::from(head) + 1),
    };
    let digits = usize::from(c.node_digits.unwrap_or(2));
    if !(1..=4).contains(&digits) {
        return Err(ck.err("cluster.node_digits", "must be 1 to 4"));
    }

    let mut boards = Vec::new();
    for (bname, spec) in c.boards.iter().flatten() {
        let field = format!("cluster.boards.{bname}");
        let spec = spec.clone().unwrap_or_default();
        let cpus = spec.cpus.filter(|&n| n > 0).ok_or_else(|| {
            ck.err(
                &format!("{field}.cpus"),
                "missing; give the cores Slurm may allocate on it (`6`)",
            )
        })?;
        let memory = spec.memory.as_deref().ok_or_else(|| {
            ck.err(
                &format!("{field}.memory"),
                "missing; give the memory jobs may use (`3500MiB`)",
            )
        })?;
        let bytes = ck.bytes(&format!("{field}.memory"), memory)?;
        if bytes < 1 << 20 {
            return Err(ck.err(&format!("{field}.memory"), "less than 1 MiB; give it as `3500MiB`"));
        }
        boards.push(BoardPlan {
            name: bname.clone(),
            cpus,
            memory_mib: bytes >> 20,
            hostlist: String::new(),
        });
    }

    let mut nodes = Vec::new();
    let groups = c.nodes.as_ref().map(|n| n.items.clone()).unwrap_or_default();
    for (g, group) in groups.iter().enumerate() {
        let field = format!("cluster.nodes[{g}]");
        let Some(board) = boards.iter_mut().find(|b| b.name == group.board) else {
            let known: Vec<&str> = c.boards.iter().flatten().map(|(n, _)| n.as_str()).collect();
            return Err(ck.err(
                &format!("{field}.board"),
                format!(
                    "`{}` is not under cluster.boards ({}); add it there with its cpus and memory",
                    group.board,
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        if group.macs.len() > group.count as usize {
            return Err(ck.err(
                &format!("{field}.macs"),
                format!("{} MAC addresses for {} nodes", group.macs.len(), group.count),
            ));
        }
        let start = nodes.len();
        for i in 0..group.count as usize {
            let n = nodes.len() + 1;
            let addr = u32::from(first) + (n as u32 - 1);
            let a = Ipv4Addr::from(addr);
            if !inside(a) || a == broadcast || a == head {
                return Err(ck.err(
                    &format!("{field}.count"),
                    format!("node {n} would have the address {a}, outside {network}/{prefix} or the head's: fewer nodes, or an earlier first_node"),
                ));
            }
            let mac = match group.macs.get(i) {
                Some(m) => Some(parse_mac(m).map_err(|e| ck.err(&format!("{field}.macs"), e))?),
                None => None,
            };
            nodes.push(NodePlan {
                name: format!("{name}{n:0digits$}"),
                address: a.to_string(),
                board: group.board.clone(),
                mac,
            });
        }
        let (lo, hi) = (start + 1, nodes.len());
        let range = if lo == hi {
            format!("{lo:0digits$}")
        } else {
            format!("{lo:0digits$}-{hi:0digits$}")
        };
        board.hostlist = match board.hostlist.strip_suffix(']') {
            Some(open) => format!("{open},{range}]"),
            None if lo <= hi => format!("{name}[{range}]"),
            None => String::new(),
        };
    }
    if nodes.is_empty() {
        return Err(ck.err(
            "cluster.nodes",
            "missing; list the compute nodes (`- {board: rock-4c-plus, count: 8}`)",
        ));
    }
    if nodes.len() >= 10usize.pow(digits as u32) {
        return Err(ck.err(
            "cluster.node_digits",
            format!("{} nodes need more than {digits} digits", nodes.len()),
        ));
    }
    let mut macs: Vec<&str> = nodes.iter().filter_map(|n| n.mac.as_deref()).collect();
    macs.sort_unstable();
    if let Some(w) = macs.windows(2).find(|w| w[0] == w[1]) {
        return Err(ck.err("cluster.nodes", format!("the MAC address {} is listed twice", w[0])));
    }
    Ok(Some(ClusterPlan {
        head_name: name.clone(),
        name,
        network: network.to_string(),
        prefix,
        netmask: Ipv4Addr::from(mask).to_string(),
        cidr: format!("{network}/{prefix}"),
        head: head.to_string(),
        pool_first: nodes[0].address.clone(),
        pool_last: nodes[nodes.len() - 1].address.clone(),
        nodes,
        boards,
    }))
}

/// One DNS label: lower-case letters, digits and `-`, a letter first, at most 63.
fn is_host_label(s: &str) -> bool {
    s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `192.168.5.0/24` → (the network address, 24), refusing host bits.
fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("`{text}` is not a network such as `192.168.5.0/24`");
    let (a, p) = text.split_once('/').ok_or_else(bad)?;
    let a: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let p: u8 = p.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&p) {
        return Err(format!("`/{p}`: the cluster LAN needs a prefix from /8 to /30"));
    }
    let mask = u32::MAX << (32 - p);
    if u32::from(a) & !mask != 0 {
        return Err(format!(
            "`{text}` has host bits set; the network is {}/{p}",
            Ipv4Addr::from(u32::from(a) & mask)
        ));
    }
    Ok((a, p))
}

/// `AA-BB-CC-dd-ee-ff` or `aa:bb:…` → `aa:bb:cc:dd:ee:ff`.
fn parse_mac(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(format!("`{text}` is not a MAC address such as `aa:bb:cc:dd:ee:ff`"));
    }
    Ok(parts.join(":").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::merge::Origins;
    use std::path::Path;

    fn plan(yaml: &str) -> Result<Option<ClusterPlan>, String> {
        let recipe: Recipe = serde_norway::from_str(yaml).unwrap();
        let origins = Origins::new();
        let ck = Checker {
            origins: &origins,
            main_file: Path::new("r.yaml"),
        };
        cluster(&recipe, &ck).map_err(|e| e.to_string())
    }

    const CLUSTER: &str = "cluster:\n  name: minihpc\n  network: 192.168.5.0/24\n  head: 192.168.5.101\n  boards:\n    rock-4c-plus: {cpus: 6, memory: 3500MiB}\n    pi4: {cpus: 4, memory: 3GiB}\n  nodes:\n    - {board: rock-4c-plus, count: 3, macs: ['AA-BB-CC-00-00-01']}\n    - {board: pi4, count: 1}\n";

    #[test]
    fn nodes_are_named_and_addressed_in_order_with_their_boards() {
        let c = plan(CLUSTER).unwrap().unwrap();
        assert_eq!(c.netmask, "255.255.255.0");
        assert_eq!(c.cidr, "192.168.5.0/24");
        let names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["minihpc01", "minihpc02", "minihpc03", "minihpc04"]);
        assert_eq!(c.nodes[0].address, "192.168.5.102");
        assert_eq!(c.nodes[3].address, "192.168.5.105");
        assert_eq!(c.nodes[0].mac.as_deref(), Some("aa:bb:cc:00:00:01"));
        assert_eq!(c.nodes[1].mac, None);
        assert_eq!(c.boards[0].hostlist, "minihpc[01-03]");
        assert_eq!(c.boards[1].hostlist, "minihpc[04]");
        assert_eq!((c.boards[0].cpus, c.boards[0].memory_mib), (6, 3500));
        assert_eq!(c.boards[1].memory_mib, 3072);
        assert_eq!(
            (c.pool_first.as_str(), c.pool_last.as_str()),
            ("192.168.5.102", "192.168.5.105")
        );
        assert_eq!(plan("{}\n").unwrap(), None);
    }

    #[test]
    fn mistakes_name_their_field() {
        for (change, want) in [
            (
                ("192.168.5.0/24", "192.168.5.1/24"),
                "cluster.network: `192.168.5.1/24` has host bits set",
            ),
            (
                ("head: 192.168.5.101", "head: 10.0.0.1"),
                "cluster.head: 10.0.0.1 is not a host address of 192.168.5.0/24",
            ),
            (
                ("board: pi4", "board: pi5"),
                "`pi5` is not under cluster.boards (rock-4c-plus, pi4)",
            ),
            (("count: 3,", "count: 300,"), "outside 192.168.5.0/24"),
            (("AA-BB-CC-00-00-01", "AA-BB"), "`AA-BB` is not a MAC address"),
            (
                ("name: minihpc", "name: Mini_HPC"),
                "cluster.name: `Mini_HPC` cannot name hosts",
            ),
            (
                ("{cpus: 4, memory: 3GiB}", "{cpus: 4}"),
                "cluster.boards.pi4.memory: missing",
            ),
        ] {
            let yaml = CLUSTER.replace(change.0, change.1);
            let e = plan(&yaml).unwrap_err();
            assert!(e.contains(want), "{change:?}: {e}");
        }
    }
}
