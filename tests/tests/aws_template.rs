//! The AWS deployment (`deploy/aws/tether.json`, CloudFormation), checked
//! offline as far as that can go. `cfn-lint` validates property types and
//! names but accepts far too much here: it passed an idle timeout of
//! 99999, a `StopTimeout` of 500, a made-up TLS policy, the reserved cookie
//! name `AWSALB` and duplicate listener-rule priorities, all of which AWS
//! refuses at deploy time. So these tests check four things themselves:
//!
//! 1. **Against the replica it deploys**: the balancer settings that
//!    long-lived SSE sessions depend on are derived from the replica's
//!    defaults (`tether_server::Config::default()`), and the values the
//!    template sets (drain bound, session cap, peers, secret) follow from
//!    its parameters as the README says.
//! 2. **Against AWS's documented limits** ([`limit_violations`]): ranges,
//!    valid Fargate sizes, the documented TLS policies, reserved cookie
//!    names, unique rule priorities, health check timing. A test applies
//!    each defect cfn-lint let through and watches the check catch it.
//! 3. **Every combination of the parameters that change the template's
//!    shape** is rendered to literals (conditions, `Fn::If`, `Ref` of
//!    parameters, `Fn::FindInMap`, `Fn::Sub` over parameters; references to
//!    resources and pseudo parameters stay) and linted by the pinned
//!    `cfn-lint`, together with the template itself. The template's `Rules`
//!    are evaluated for valid and invalid inputs (a small model of the
//!    subnets stands in for `Fn::ValueOf`).
//! 4. **`checkov`** (pinned, `tests/requirements-checkov.txt`) scans the
//!    rendered templates; every check it may fail is listed with its reason
//!    in [`checkov_expected`].
//!
//! What none of this can know offline (the account's quotas, that the
//! subnets reach ECR, that the certificate covers `DomainName`) the README
//! lists under "Deploy".

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tether_server::Config;

/// After its drain bound, a replica gives the streams still open this long
/// to close before it exits.
const EXIT_GRACE_SECS: u64 = tether_server::replica::EXIT_GRACE.as_secs();
/// The longest `stopTimeout` Fargate accepts.
const FARGATE_MAX_STOP_TIMEOUT: u64 = 120;
/// The highest `nofile` limit Fargate accepts.
const FARGATE_MAX_NOFILE: u64 = 1_048_576;
/// Keep-alives an SSE stream may miss in a row before the balancer's idle
/// timeout cuts it. One late keep-alive (a busy replica) must not cost a
/// stream.
const MISSED_KEEPALIVES_TOLERATED: u64 = 3;
/// Memory a session with an open stream costs a replica (measured about
/// 15 KiB in `bench/`; rounded up).
const SESSION_BYTES: u64 = 20 * 1024;
/// The share of a task's memory that sessions may take: the rest is the
/// process, buffers and bursts.
const SESSION_MEMORY_SHARE: f64 = 0.6;
/// A DNS answer of a MULTIVALUE Cloud Map service carries at most this
/// many addresses (Route 53's multivalue answer limit).
const DNS_ANSWER_MAX: u64 = 8;
/// What the image runs (`ENTRYPOINT` of the Dockerfile).
const BINARY: &str = "/usr/local/bin/tether-server";

/// The TLS security policies AWS documents for Application Load Balancer
/// HTTPS listeners ("Security policies for your Application Load
/// Balancer", Elastic Load Balancing user guide).
const ALB_TLS_POLICIES: &[&str] = &[
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    "ELBSecurityPolicy-FS-1-2-2019-08",
    "ELBSecurityPolicy-FS-1-1-2019-08",
    "ELBSecurityPolicy-FS-2018-06",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-2016-08",
    "ELBSecurityPolicy-2015-05",
];

/// Cookie name prefixes an ALB reserves for its own cookies: an
/// application cookie may not start with them.
const RESERVED_COOKIE_PREFIXES: &[&str] = &["AWSALB", "AWSALBAPP", "AWSALBTG"];

/// Fargate's valid task sizes (Linux), CPU units -> memory in MiB
/// ("Task CPU and memory", Amazon ECS developer guide), up to 4 vCPU.
fn fargate_memory_for(cpu: u64) -> Vec<u64> {
    let gib = |from: u64, to: u64| (from..=to).map(|g| g * 1024).collect::<Vec<_>>();
    match cpu {
        256 => vec![512, 1024, 2048],
        512 => gib(1, 4),
        1024 => gib(2, 8),
        2048 => gib(4, 16),
        4096 => gib(8, 30),
        _ => Vec::new(),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root")
        .to_path_buf()
}

fn template_path() -> PathBuf {
    root().join("deploy/aws/tether.json")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn template() -> Value {
    serde_json::from_str(&read(&template_path()))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", template_path().display()))
}

/// Values for the parameters without a default: a made-up account whose
/// subnets are described in [`subnet`].
const REQUIRED: &[(&str, &str)] = &[
    ("VpcId", "vpc-0a0a0a0a0a0a0a0a0"),
    (
        "LoadBalancerSubnetIds",
        "subnet-0a000000000000001,subnet-0b000000000000002",
    ),
    (
        "TaskSubnetIds",
        "subnet-0a000000000000011,subnet-0b000000000000012",
    ),
    (
        "Image",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tether:1.4.2",
    ),
];

/// The made-up account's subnets: (availability zone, VPC), for
/// `Fn::ValueOf` in the template's rules.
fn subnet(id: &str) -> (&'static str, &'static str) {
    match id {
        "subnet-0a000000000000001" | "subnet-0a000000000000011" => {
            ("eu-west-1a", "vpc-0a0a0a0a0a0a0a0a0")
        }
        "subnet-0b000000000000002" | "subnet-0b000000000000012" => {
            ("eu-west-1b", "vpc-0a0a0a0a0a0a0a0a0")
        }
        "subnet-0c000000000000013" => ("eu-west-1c", "vpc-0a0a0a0a0a0a0a0a0"),
        "subnet-0d000000000000099" => ("eu-west-1a", "vpc-0d0d0d0d0d0d0d0d0"),
        other => panic!("the made-up account has no subnet {other}"),
    }
}

const CERTIFICATE: &str =
    "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000";

/// The template evaluated with its parameter defaults, some overridden.
/// Parameter values are strings (or lists of strings), as CloudFormation
/// passes them.
struct Stack {
    template: Value,
    params: Map<String, Value>,
}

impl Stack {
    fn new(overrides: &[(&str, &str)]) -> Stack {
        Stack::of(template(), overrides)
    }

    fn of(template: Value, overrides: &[(&str, &str)]) -> Stack {
        let mut stack = Stack {
            template,
            params: Map::new(),
        };
        let declared = stack.template["Parameters"]
            .as_object()
            .expect("Parameters")
            .clone();
        for (name, p) in &declared {
            if let Some(d) = p.get("Default") {
                stack.set(name, &text(d));
            }
        }
        for (name, value) in REQUIRED.iter().chain(overrides) {
            assert!(declared.contains_key(*name), "no parameter {name}");
            stack.set(name, value);
        }
        stack
    }

    fn set(&mut self, name: &str, value: &str) {
        let ty = text(&self.template["Parameters"][name]["Type"]);
        let v = if ty.starts_with("List<") || ty == "CommaDelimitedList" {
            Value::Array(
                value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            )
        } else {
            Value::String(value.to_owned())
        };
        self.params.insert(name.to_owned(), v);
    }

    fn param(&self, name: &str) -> String {
        text(
            self.params
                .get(name)
                .unwrap_or_else(|| panic!("no value for {name}")),
        )
    }

    fn parameter(&self, name: &str) -> &Value {
        let p = &self.template["Parameters"][name];
        assert!(p.is_object(), "no parameter {name}");
        p
    }

    fn condition(&self, name: &str) -> bool {
        let c = &self.template["Conditions"][name];
        assert!(!c.is_null(), "no condition {name}");
        self.truth(c)
    }

    /// A condition function (in `Conditions`) or a rule function (in
    /// `Rules`, where `Fn::Contains`, `Fn::EachMemberEquals`,
    /// `Fn::EachMemberIn` and `Fn::ValueOf` also appear).
    fn truth(&self, c: &Value) -> bool {
        let (f, args) = single_key(c).unwrap_or_else(|| panic!("not a condition: {c}"));
        let arg = |i: usize| &args[i];
        let list = |v: &Value| -> Vec<Value> {
            match self.resolve(v) {
                Some(Value::Array(a)) => a,
                other => panic!("expected a list, found {other:?} from {v}"),
            }
        };
        match f {
            "Fn::Equals" => {
                self.resolve(arg(0)).map(|v| text(&v)) == self.resolve(arg(1)).map(|v| text(&v))
            }
            "Fn::Not" => !self.truth(arg(0)),
            "Fn::And" => args.as_array().expect("list").iter().all(|a| self.truth(a)),
            "Fn::Or" => args.as_array().expect("list").iter().any(|a| self.truth(a)),
            "Condition" => self.condition(args.as_str().expect("name")),
            "Fn::Contains" => {
                let needle = self.resolve(arg(1)).map(|v| text(&v));
                list(arg(0)).iter().any(|v| Some(text(v)) == needle)
            }
            "Fn::EachMemberEquals" => {
                let value = self.resolve(arg(1)).map(|v| text(&v));
                list(arg(0)).iter().all(|v| Some(text(v)) == value)
            }
            "Fn::EachMemberIn" => {
                let within: Vec<String> = list(arg(1)).iter().map(text).collect();
                list(arg(0)).iter().all(|v| within.contains(&text(v)))
            }
            _ => panic!("the evaluator does not know {f}"),
        }
    }

    /// The template's rules that this stack's parameters break, by name.
    fn broken_rules(&self) -> Vec<String> {
        let rules = self.template["Rules"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        rules
            .into_iter()
            .filter(|(_, rule)| rule.get("RuleCondition").is_none_or(|c| self.truth(c)))
            .filter(|(_, rule)| {
                rule["Assertions"]
                    .as_array()
                    .expect("Assertions")
                    .iter()
                    .any(|a| !self.truth(&a["Assert"]))
            })
            .map(|(name, _)| name)
            .collect()
    }

    /// `None` for `AWS::NoValue`. `Ref` of a parameter, `Fn::If`,
    /// `Fn::FindInMap` and the parameters in `Fn::Sub` become literals;
    /// references to resources and pseudo parameters stay as they are.
    fn resolve(&self, v: &Value) -> Option<Value> {
        match v {
            Value::Object(o) => {
                if let Some((f, args)) = single_key(v) {
                    match f {
                        "Ref" if args == "AWS::NoValue" => return None,
                        "Ref" => {
                            if let Some(p) = args.as_str().and_then(|n| self.params.get(n)) {
                                return Some(p.clone());
                            }
                        }
                        "Fn::If" => {
                            let name = args[0].as_str().expect("condition name");
                            let branch = if self.condition(name) { 1 } else { 2 };
                            return self.resolve(&args[branch]);
                        }
                        "Fn::FindInMap" => {
                            let key = |i: usize| text(&self.resolve(&args[i]).expect("a key"));
                            let found = &self.template["Mappings"][key(0)][key(1)][key(2)];
                            assert!(!found.is_null(), "no mapping {args}");
                            return Some(found.clone());
                        }
                        "Fn::Sub" if args.is_string() => {
                            return Some(self.substitute(args.as_str().unwrap_or_default()));
                        }
                        "Fn::ValueOf" => {
                            let ids = self.resolve(&json!({"Ref": args[0]})).expect("ids");
                            let attribute = args[1].as_str().expect("attribute");
                            let values = ids
                                .as_array()
                                .expect("a list parameter")
                                .iter()
                                .map(|id| {
                                    let (zone, vpc) = subnet(&text(id));
                                    match attribute {
                                        "AvailabilityZone" => json!(zone),
                                        "VpcId" => json!(vpc),
                                        other => panic!("no subnet attribute {other}"),
                                    }
                                })
                                .collect();
                            return Some(Value::Array(values));
                        }
                        _ => {}
                    }
                }
                Some(Value::Object(
                    o.iter()
                        .filter_map(|(k, v)| self.resolve(v).map(|v| (k.clone(), v)))
                        .collect(),
                ))
            }
            Value::Array(a) => Some(Value::Array(
                a.iter().filter_map(|v| self.resolve(v)).collect(),
            )),
            other => Some(other.clone()),
        }
    }

    /// `Fn::Sub` with the parameters put in: a plain string if nothing
    /// else is named, else an `Fn::Sub` of what is left.
    fn substitute(&self, s: &str) -> Value {
        let mut out = String::new();
        let mut rest = s;
        let mut left = false;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closing brace") + start;
            let name = &rest[start + 2..end];
            match self.params.get(name) {
                Some(v) if !name.starts_with('!') => out.push_str(&text(v)),
                _ => {
                    out.push_str(&rest[start..=end]);
                    left = true;
                }
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        if left {
            json!({ "Fn::Sub": out })
        } else {
            Value::String(out)
        }
    }

    fn creates(&self, resource: &Value) -> bool {
        resource["Condition"]
            .as_str()
            .is_none_or(|c| self.condition(c))
    }

    /// The resolved properties of the resources of type `ty` that this
    /// stack creates, by logical id.
    fn resources(&self, ty: &str) -> Vec<(String, Value)> {
        let all = self.template["Resources"].as_object().expect("Resources");
        all.iter()
            .filter(|(_, r)| r["Type"] == ty && self.creates(r))
            .map(|(id, r)| {
                let props = self.resolve(&r["Properties"]).unwrap_or(Value::Null);
                (id.clone(), props)
            })
            .collect()
    }

    /// The properties of the one resource of type `ty`.
    fn resource(&self, ty: &str) -> Value {
        let mut found = self.resources(ty);
        assert_eq!(found.len(), 1, "expected exactly one {ty}");
        found.remove(0).1
    }

    fn resource_by_id(&self, id: &str) -> Value {
        let r = &self.template["Resources"][id];
        assert!(
            r.is_object() && self.creates(r),
            "no resource {id} in this stack"
        );
        self.resolve(&r["Properties"]).unwrap_or(Value::Null)
    }

    fn container(&self) -> Value {
        let task = self.resource("AWS::ECS::TaskDefinition");
        let containers = task["ContainerDefinitions"].as_array().expect("containers");
        assert_eq!(containers.len(), 1, "one container per task");
        containers[0].clone()
    }

    fn environment(&self) -> Vec<(String, String)> {
        self.container()["Environment"]
            .as_array()
            .expect("Environment")
            .iter()
            .map(|e| (text(&e["Name"]), text(&e["Value"])))
            .collect()
    }

    fn env(&self, name: &str) -> Option<String> {
        self.environment()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    fn env_number(&self, name: &str) -> u64 {
        let v = self
            .env(name)
            .unwrap_or_else(|| panic!("{name} is not set"));
        v.parse().unwrap_or_else(|e| panic!("{name}={v}: {e}"))
    }

    /// Target group attributes as a map.
    fn target_group_attributes(&self) -> Map<String, Value> {
        key_values(
            &self.resource("AWS::ElasticLoadBalancingV2::TargetGroup")["TargetGroupAttributes"],
        )
    }

    fn load_balancer_attributes(&self) -> Map<String, Value> {
        key_values(
            &self.resource("AWS::ElasticLoadBalancingV2::LoadBalancer")["LoadBalancerAttributes"],
        )
    }

    fn load_balancer_attribute(&self, key: &str) -> String {
        let attrs = self.load_balancer_attributes();
        text(
            attrs
                .get(key)
                .unwrap_or_else(|| panic!("the load balancer sets no {key}")),
        )
    }

    fn output(&self, name: &str) -> Value {
        let o = &self.template["Outputs"][name];
        assert!(o.is_object(), "no output {name}");
        self.resolve(&o["Value"]).expect("a value")
    }

    /// The whole template as this stack would create it: parameters put
    /// in, conditions decided, mappings looked up. What is left refers to
    /// resources and pseudo parameters only.
    fn render(&self) -> Value {
        let t = &self.template;
        let mut out = Map::new();
        for key in ["AWSTemplateFormatVersion", "Description"] {
            out.insert(key.to_owned(), t[key].clone());
        }
        let mut resources = Map::new();
        for (id, r) in t["Resources"].as_object().expect("Resources") {
            if !self.creates(r) {
                continue;
            }
            let mut r = self.resolve(r).expect("a resource");
            r.as_object_mut().expect("an object").remove("Condition");
            resources.insert(id.clone(), r);
        }
        out.insert("Resources".to_owned(), Value::Object(resources));
        let mut outputs = Map::new();
        for (id, o) in t["Outputs"].as_object().expect("Outputs") {
            if self.creates(o) {
                let mut o = self.resolve(o).expect("an output");
                o.as_object_mut().expect("an object").remove("Condition");
                outputs.insert(id.clone(), o);
            }
        }
        out.insert("Outputs".to_owned(), Value::Object(outputs));
        Value::Object(out)
    }
}

fn key_values(list: &Value) -> Map<String, Value> {
    list.as_array()
        .expect("a list of Key/Value")
        .iter()
        .map(|a| (text(&a["Key"]), Value::String(text(&a["Value"]))))
        .collect()
}

fn single_key(v: &Value) -> Option<(&str, &Value)> {
    match v.as_object() {
        Some(o) if o.len() == 1 => o.iter().next().map(|(k, v)| (k.as_str(), v)),
        _ => None,
    }
}

/// A string or a number (CloudFormation passes both as strings).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, found {other}"),
    }
}

fn number(v: &Value) -> u64 {
    text(v)
        .parse()
        .unwrap_or_else(|e| panic!("expected a number, found {v}: {e}"))
}

fn allowed_values(stack: &Stack, name: &str) -> Vec<String> {
    stack.parameter(name)["AllowedValues"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} has no AllowedValues"))
        .iter()
        .map(text)
        .collect()
}

fn attribute(attrs: &Map<String, Value>, key: &str) -> String {
    text(
        attrs
            .get(key)
            .unwrap_or_else(|| panic!("the target group sets no {key}: {attrs:?}")),
    )
}

/// The parameter combinations that change the template's shape, each a
/// list of overrides: certificate or not, autoscaling off / CPU / memory,
/// both stickiness types, access logs or not, Container Insights, allowed
/// origins, and the smallest and largest deregistration delays and task
/// sizes.
fn combinations() -> Vec<Vec<(&'static str, &'static str)>> {
    let mut all = Vec::new();
    for tls in [false, true] {
        for scaling in ["off", "cpu", "memory"] {
            for sticky in ["app_cookie", "lb_cookie"] {
                for logs in [false, true] {
                    let mut c = vec![("AutoScaling", scaling), ("Stickiness", sticky)];
                    if tls {
                        c.push(("CertificateArn", CERTIFICATE));
                        c.push(("DomainName", "mcp.example.com"));
                    }
                    if logs {
                        c.push(("AccessLogBucket", "example-alb-logs"));
                        c.push(("ContainerInsights", "enhanced"));
                        c.push(("AllowedOrigins", "https://app.example.com"));
                    }
                    all.push(c);
                }
            }
        }
    }
    // Stateless: no stickiness, whatever Stickiness says.
    for sticky in ["app_cookie", "lb_cookie"] {
        all.push(vec![("Sessions", "stateless"), ("Stickiness", sticky)]);
    }
    all.push(vec![
        ("Sessions", "stateless"),
        ("AutoScaling", "cpu"),
        ("CertificateArn", CERTIFICATE),
        ("DomainName", "mcp.example.com"),
    ]);
    all.push(vec![(
        "RedisUrl",
        "redis://tether.abc123.use1.cache.amazonaws.com:6379/0",
    )]);
    all.push(vec![
        ("Sessions", "stateless"),
        ("RedisUrl", "redis://:pass@10.0.3.7:6379/2"),
    ]);
    all.push(vec![
        ("DeregistrationDelaySeconds", "30"),
        ("TaskCpu", "256"),
        ("TaskMemory", "512"),
        ("TaskCount", "1"),
    ]);
    all.push(vec![
        ("DeregistrationDelaySeconds", "3600"),
        ("TaskCpu", "4096"),
        ("TaskMemory", "30720"),
        ("DomainName", "mcp.example.com"),
    ]);
    all
}

fn stacks() -> Vec<(String, Stack)> {
    combinations()
        .into_iter()
        .map(|c| {
            let name = c
                .iter()
                .map(|(k, v)| format!("{k}={}", v.rsplit('/').next().unwrap_or(v)))
                .collect::<Vec<_>>()
                .join(",");
            (name, Stack::new(&c))
        })
        .collect()
}

/// What AWS would refuse in this stack although cfn-lint accepts it, each
/// as a sentence; empty when nothing.
/// The timing rules that target-group and container health checks share:
/// an interval of 5..300 s, a timeout of 2..120 s, below the interval.
fn health_check_timing(what: &str, interval: u64, timeout: u64) -> Vec<String> {
    let mut bad = Vec::new();
    if !(5..=300).contains(&interval) {
        bad.push(format!("{what} interval {interval} s is outside 5..300"));
    }
    if !(2..=120).contains(&timeout) {
        bad.push(format!("{what} timeout {timeout} s is outside 2..120"));
    }
    if timeout >= interval {
        bad.push(format!(
            "{what} timeout {timeout} s is not below its interval {interval} s"
        ));
    }
    bad
}

fn limit_violations(stack: &Stack) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    let in_range = |v: u64, lo: u64, hi: u64| (lo..=hi).contains(&v);

    // The load balancer.
    let lb = stack.load_balancer_attributes();
    let idle = number(&lb["idle_timeout.timeout_seconds"]);
    check(
        in_range(idle, 1, 4000),
        format!("ALB idle timeout {idle} s is outside 1..4000"),
    );

    // The target group.
    let tg = stack.resource("AWS::ElasticLoadBalancingV2::TargetGroup");
    let attrs = key_values(&tg["TargetGroupAttributes"]);
    let delay = number(&attrs["deregistration_delay.timeout_seconds"]);
    check(
        in_range(delay, 0, 3600),
        format!("deregistration delay {delay} s is outside 0..3600"),
    );
    let interval = number(&tg["HealthCheckIntervalSeconds"]);
    let timeout = number(&tg["HealthCheckTimeoutSeconds"]);
    for v in health_check_timing("health check", interval, timeout) {
        check(false, v);
    }
    for key in ["HealthyThresholdCount", "UnhealthyThresholdCount"] {
        let n = number(&tg[key]);
        check(in_range(n, 2, 10), format!("{key} {n} is outside 2..10"));
    }
    for key in [
        "stickiness.app_cookie.duration_seconds",
        "stickiness.lb_cookie.duration_seconds",
    ] {
        if let Some(d) = attrs.get(key) {
            let d = number(d);
            check(
                in_range(d, 1, 604_800),
                format!("{key} {d} is outside 1..604800"),
            );
        }
    }
    if let Some(name) = attrs.get("stickiness.app_cookie.cookie_name") {
        let name = text(name);
        check(
            !RESERVED_COOKIE_PREFIXES.iter().any(|p| name.starts_with(p)),
            format!(
                "the application cookie {name} takes a name the ALB reserves (AWSALB, AWSALBAPP, AWSALBTG)"
            ),
        );
        check(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)),
            format!("the application cookie name {name:?} is not a plain token"),
        );
    }

    // Listeners and their rules.
    let mut priorities: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (_, rule) in stack.resources("AWS::ElasticLoadBalancingV2::ListenerRule") {
        let p = number(&rule["Priority"]);
        check(
            in_range(p, 1, 50_000),
            format!("listener rule priority {p} is outside 1..50000"),
        );
        priorities
            .entry(rule["ListenerArn"].to_string())
            .or_default()
            .push(p);
    }
    for (listener, mut ps) in priorities {
        let n = ps.len();
        ps.sort_unstable();
        ps.dedup();
        check(
            ps.len() == n,
            format!("listener {listener} has two rules of one priority"),
        );
    }
    for (id, l) in stack.resources("AWS::ElasticLoadBalancingV2::Listener") {
        if l["Protocol"] == "HTTPS" {
            let policy = l["SslPolicy"]
                .as_str()
                .unwrap_or("(none: the API's 2016 default)");
            check(
                ALB_TLS_POLICIES.contains(&policy),
                format!("{id}: {policy} is not a TLS policy AWS documents for an ALB"),
            );
        }
        for a in l["DefaultActions"].as_array().into_iter().flatten() {
            if let Some(body) = a["FixedResponseConfig"]["MessageBody"].as_str() {
                check(
                    body.len() <= 1024,
                    format!("{id}: fixed response of {} bytes (max 1024)", body.len()),
                );
            }
        }
    }

    // The task.
    let task = stack.resource("AWS::ECS::TaskDefinition");
    let (cpu, memory) = (number(&task["Cpu"]), number(&task["Memory"]));
    check(
        fargate_memory_for(cpu).contains(&memory),
        format!("Fargate runs no task of {cpu} CPU units with {memory} MiB"),
    );
    let c = stack.container();
    let stop = number(&c["StopTimeout"]);
    check(
        stop <= FARGATE_MAX_STOP_TIMEOUT,
        format!("StopTimeout {stop} s exceeds Fargate's 120 s"),
    );
    for u in c["Ulimits"].as_array().into_iter().flatten() {
        let (soft, hard) = (number(&u["SoftLimit"]), number(&u["HardLimit"]));
        check(
            soft <= hard,
            format!("ulimit {}: soft {soft} above hard {hard}", u["Name"]),
        );
        if u["Name"] == "nofile" {
            check(
                hard <= FARGATE_MAX_NOFILE,
                format!("nofile {hard} exceeds Fargate's {FARGATE_MAX_NOFILE}"),
            );
        }
    }
    let hc = &c["HealthCheck"];
    let (hi, ht, hr, hs) = (
        number(&hc["Interval"]),
        number(&hc["Timeout"]),
        number(&hc["Retries"]),
        number(&hc["StartPeriod"]),
    );
    for v in health_check_timing("container health check", hi, ht) {
        check(false, v);
    }
    check(
        in_range(hr, 1, 10),
        format!("container health check retries {hr} are outside 1..10"),
    );
    check(
        in_range(hs, 0, 300),
        format!("container health check start period {hs} s is outside 0..300"),
    );
    bad
}

#[test]
fn aws_every_combination_is_within_the_limits_aws_documents() {
    for (name, stack) in stacks() {
        let bad = limit_violations(&stack);
        assert!(bad.is_empty(), "{name}:\n  {}", bad.join("\n  "));
        assert!(
            stack.broken_rules().is_empty(),
            "{name}: {:?}",
            stack.broken_rules()
        );
    }
}

/// Applies `change` to the template (a JSON pointer and its new value).
fn with_defect(pointer: &str, value: Value) -> Value {
    let mut t = template();
    *t.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("the template has no {pointer}")) = value;
    t
}

/// The index of `key` in a list of `{Key, Value}` at `pointer`.
fn key_index(t: &Value, pointer: &str, key: &str) -> usize {
    t.pointer(pointer)
        .and_then(Value::as_array)
        .and_then(|a| a.iter().position(|kv| kv["Key"] == key))
        .unwrap_or_else(|| panic!("no {key} at {pointer}"))
}

/// A defect cfn-lint let through: what it is, the template with it, the
/// parameters that bring it out, and words of the violation expected.
struct Defect(
    &'static str,
    Value,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn aws_the_limit_checks_catch_what_cfn_lint_let_through() {
    let t = template();
    let lb_attrs = "/Resources/LoadBalancer/Properties/LoadBalancerAttributes";
    let tg_attrs = "/Resources/TargetGroup/Properties/TargetGroupAttributes";
    let idle = key_index(&t, lb_attrs, "idle_timeout.timeout_seconds");
    let cookie = t
        .pointer(tg_attrs)
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .position(|kv| kv.to_string().contains("cookie_name"))
        })
        .expect("the cookie name attribute");
    let container = "/Resources/TaskDefinition/Properties/ContainerDefinitions/0";
    let mut duplicate = template();
    let mut rule = duplicate["Resources"]["McpRule"].clone();
    rule["Properties"]["Conditions"][0]["PathPatternConfig"]["Values"] = json!(["/other"]);
    duplicate["Resources"]["OtherRule"] = rule;

    let defects: Vec<Defect> = vec![
        Defect(
            "idle timeout 99999",
            with_defect(&format!("{lb_attrs}/{idle}/Value"), json!("99999")),
            &[],
            "idle timeout",
        ),
        Defect(
            "StopTimeout 500",
            with_defect(&format!("{container}/StopTimeout"), json!(500)),
            &[],
            "StopTimeout",
        ),
        Defect(
            "a made-up TLS policy",
            with_defect(
                "/Resources/Listener/Properties/SslPolicy/Fn::If/1",
                json!("ELBSecurityPolicy-TLS13-1-2-Made-Up-2024-01"),
            ),
            &[
                ("CertificateArn", CERTIFICATE),
                ("DomainName", "mcp.example.com"),
            ],
            "TLS policy",
        ),
        Defect(
            "the reserved cookie name AWSALB",
            with_defect(
                &format!("{tg_attrs}/{cookie}/Fn::If/1/Value"),
                json!("AWSALB"),
            ),
            &[],
            "reserves",
        ),
        Defect(
            "duplicate listener-rule priorities",
            duplicate,
            &[],
            "two rules of one priority",
        ),
        Defect(
            "a health check timeout at its interval",
            with_defect(
                "/Resources/TargetGroup/Properties/HealthCheckTimeoutSeconds",
                json!(15),
            ),
            &[],
            "health check timeout",
        ),
        Defect(
            "nofile above Fargate's maximum",
            with_defect(
                &format!("{container}/Ulimits/0/HardLimit"),
                json!(2_000_000),
            ),
            &[],
            "nofile",
        ),
    ];
    for Defect(defect, template, params, expected) in defects {
        let bad = limit_violations(&Stack::of(template, params));
        assert!(
            bad.iter().any(|b| b.contains(expected)),
            "{defect} went unnoticed: {bad:?}"
        );
    }
    // An invalid Fargate size passes cfn-lint; the template's rules refuse
    // it before anything is created, and so does the limit check.
    let invalid = Stack::new(&[("TaskCpu", "1024"), ("TaskMemory", "1024")]);
    assert_eq!(invalid.broken_rules(), ["FargateMemoryFor1024Cpu"]);
    assert!(
        limit_violations(&invalid)
            .iter()
            .any(|b| b.contains("Fargate runs no task"))
    );
}

#[test]
fn aws_the_rules_refuse_every_invalid_fargate_size_and_accept_every_valid_one() {
    let stack = Stack::new(&[]);
    for cpu in allowed_values(&stack, "TaskCpu") {
        for memory in allowed_values(&stack, "TaskMemory") {
            let s = Stack::new(&[("TaskCpu", &cpu), ("TaskMemory", &memory)]);
            let valid = fargate_memory_for(cpu.parse().expect("cpu"))
                .contains(&memory.parse().expect("memory"));
            let refused = s
                .broken_rules()
                .iter()
                .any(|r| r.starts_with("FargateMemory"));
            assert_eq!(
                refused,
                !valid,
                "{cpu} CPU with {memory} MiB: rules {:?}",
                s.broken_rules()
            );
        }
    }
    let default = (stack.param("TaskCpu"), stack.param("TaskMemory"));
    assert_eq!(default, ("512".to_owned(), "1024".to_owned()));
}

#[test]
fn aws_the_rules_keep_task_subnets_in_the_load_balancers_zones_and_vpc() {
    let good = Stack::new(&[]);
    assert!(good.broken_rules().is_empty(), "{:?}", good.broken_rules());
    let other_zone = Stack::new(&[(
        "TaskSubnetIds",
        "subnet-0a000000000000011,subnet-0c000000000000013",
    )]);
    assert_eq!(
        other_zone.broken_rules(),
        ["TaskSubnetsInLoadBalancerZones"]
    );
    let other_vpc = Stack::new(&[("TaskSubnetIds", "subnet-0d000000000000099")]);
    assert_eq!(other_vpc.broken_rules(), ["SubnetsOfTheVpc"]);
}

#[test]
fn aws_stickiness_pins_on_the_replicas_cookie_or_the_balancers_own() {
    let defaults = Config::default();
    let stack = Stack::new(&[]);
    let choice = stack.parameter("Stickiness");
    assert_eq!(choice["Default"], "app_cookie");
    assert_eq!(choice["AllowedValues"], json!(["app_cookie", "lb_cookie"]));
    // A session lives until it has been idle for session_idle_secs; the
    // balancer must keep its client pinned at least that long (it renews
    // its cookie on every response, so this is an idle bound too).
    let seconds = stack.parameter("StickinessSeconds");
    assert!(number(&seconds["MinValue"]) >= defaults.session_idle_secs);
    assert!(number(&seconds["Default"]) >= defaults.session_idle_secs);
    assert!(number(&seconds["MaxValue"]) <= 604_800, "the ALB's maximum");

    let app = Stack::new(&[("Stickiness", "app_cookie")]).target_group_attributes();
    assert_eq!(attribute(&app, "stickiness.enabled"), "true");
    assert_eq!(attribute(&app, "stickiness.type"), "app_cookie");
    assert_eq!(
        attribute(&app, "stickiness.app_cookie.cookie_name"),
        defaults.cookie_name,
        "the balancer must watch the cookie the replicas set"
    );
    assert!(number(&app["stickiness.app_cookie.duration_seconds"]) >= defaults.session_idle_secs);
    assert!(!app.contains_key("stickiness.lb_cookie.duration_seconds"));

    let lb = Stack::new(&[("Stickiness", "lb_cookie")]).target_group_attributes();
    assert_eq!(attribute(&lb, "stickiness.enabled"), "true");
    assert_eq!(attribute(&lb, "stickiness.type"), "lb_cookie");
    assert!(number(&lb["stickiness.lb_cookie.duration_seconds"]) >= defaults.session_idle_secs);
    assert!(!lb.contains_key("stickiness.app_cookie.cookie_name"));
}

/// The stateless variant is one parameter: the target group pins nothing
/// and the replicas run `--stateless`; the stateful default keeps both as
/// they were.
#[test]
fn aws_the_stateless_variant_turns_stickiness_off_and_the_replicas_stateless() {
    let stateful = Stack::new(&[]);
    let choice = stateful.parameter("Sessions");
    assert_eq!(choice["Default"], "stateful");
    assert_eq!(choice["AllowedValues"], json!(["stateful", "stateless"]));
    assert_eq!(stateful.env("TETHER_STATELESS").as_deref(), Some("false"));
    for sticky in ["app_cookie", "lb_cookie"] {
        let stack = Stack::new(&[("Sessions", "stateless"), ("Stickiness", sticky)]);
        let attrs = stack.target_group_attributes();
        assert_eq!(attribute(&attrs, "stickiness.enabled"), "false", "{sticky}");
        for pinning in [
            "stickiness.type",
            "stickiness.app_cookie.cookie_name",
            "stickiness.app_cookie.duration_seconds",
            "stickiness.lb_cookie.duration_seconds",
        ] {
            assert!(!attrs.contains_key(pinning), "{sticky}: {pinning}");
        }
        assert_eq!(stack.env("TETHER_STATELESS").as_deref(), Some("true"));
    }
    assert!(
        !Config::default().stateless,
        "the replicas' default is stateful"
    );
}

#[test]
fn aws_a_stopping_task_keeps_its_calls_for_the_deregistration_delay_and_drains_within_the_stop_timeout()
 {
    let stack = Stack::new(&[]);
    let delays = allowed_values(&stack, "DeregistrationDelaySeconds");
    assert_eq!(stack.param("DeregistrationDelaySeconds"), "120");
    for d in delays {
        let s = Stack::new(&[("DeregistrationDelaySeconds", &d)]);
        let delay: u64 = d.parse().expect("a number");
        assert!(delay <= 3600, "the ALB's maximum");
        // ECS deregisters a stopping task and waits this long (requests in
        // flight finish, forwarded ones too) before SIGTERM.
        assert_eq!(
            number(&s.target_group_attributes()["deregistration_delay.timeout_seconds"]),
            delay
        );
        // After SIGTERM the replica drains for at most drain_secs, then
        // closes what is left within the exit grace: SIGKILL (stopTimeout
        // later) must come after that, and Fargate allows 120 s at most.
        let drain = s.env_number("TETHER_DRAIN_SECS");
        let stop = number(&s.container()["StopTimeout"]);
        assert!(
            stop <= FARGATE_MAX_STOP_TIMEOUT,
            "delay {delay}: stopTimeout {stop}"
        );
        assert!(
            stop >= drain + EXIT_GRACE_SECS + 10,
            "delay {delay}: stopTimeout {stop}s leaves too little after the drain bound {drain}s + {EXIT_GRACE_SECS}s"
        );
        // The drain covers the longest call (the delay) as far as the stop
        // timeout allows, and no further.
        assert!(drain <= delay, "delay {delay}: drain {drain}");
        assert!(drain > 0);
        if delay + EXIT_GRACE_SECS + 10 <= FARGATE_MAX_STOP_TIMEOUT {
            assert_eq!(drain, delay, "a delay that fits is drained in full");
        } else {
            assert!(
                stop + 5 >= FARGATE_MAX_STOP_TIMEOUT,
                "delay {delay}: stop {stop} wastes Fargate's bound"
            );
        }
    }
}

#[test]
fn aws_idle_timeout_outlasts_several_keepalives() {
    let keepalive = Config::default().keepalive_secs;
    let idle: u64 = Stack::new(&[])
        .load_balancer_attribute("idle_timeout.timeout_seconds")
        .parse()
        .expect("a number");
    assert!(
        idle >= (MISSED_KEEPALIVES_TOLERATED + 1) * keepalive,
        "idle timeout {idle}s must let {MISSED_KEEPALIVES_TOLERATED} keep-alives \
         ({keepalive}s apart) go missing before it cuts a quiet SSE stream"
    );
    assert!(idle <= 4000, "the ALB's maximum");
}

#[test]
fn aws_health_checks_tolerate_a_busy_replica_and_a_slow_start() {
    let stack = Stack::new(&[]);
    let tg = stack.resource("AWS::ElasticLoadBalancingV2::TargetGroup");
    let interval = number(&tg["HealthCheckIntervalSeconds"]);
    let timeout = number(&tg["HealthCheckTimeoutSeconds"]);
    let unhealthy = number(&tg["UnhealthyThresholdCount"]);
    let healthy = number(&tg["HealthyThresholdCount"]);
    // A target that fails its health check loses every sticky client at
    // once: a minute of late answers (a replica busy on half a vCPU) must
    // not be enough.
    assert!(timeout >= 10, "{timeout} s");
    assert!(unhealthy * interval >= 60, "{unhealthy} x {interval} s");
    let c = stack.container();
    let hc = &c["HealthCheck"];
    assert!(number(&hc["Retries"]) * number(&hc["Interval"]) >= 60);
    assert!(number(&hc["Timeout"]) >= 10);
    // ECS ignores the balancer's verdict for the grace period after a task
    // starts: it covers the container's start period and the checks the
    // balancer needs to call a new target healthy.
    let service = stack.resource("AWS::ECS::Service");
    let grace = number(&service["HealthCheckGracePeriodSeconds"]);
    assert!(grace > number(&hc["StartPeriod"]), "grace {grace} s");
    assert!(grace > healthy * interval, "grace {grace} s");
}

#[tokio::test]
async fn aws_health_check_is_the_liveness_endpoint_which_answers_while_draining() {
    let stack = Stack::new(&[]);
    let tg = stack.resource("AWS::ElasticLoadBalancingV2::TargetGroup");
    assert_eq!(tg["TargetType"], "ip", "awsvpc tasks register by IP");
    assert_eq!(tg["Matcher"]["HttpCode"], "200");
    let path = text(&tg["HealthCheckPath"]);

    // The path is served, and keeps answering 200 while the replica drains
    // (a readiness endpoint would fail then, and an unhealthy target loses
    // all its sticky sessions at once).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (replica, _task) = tether_server::spawn(
        listener,
        Config::local(),
        tether_server::Server::new("aws-template", "0.0.0"),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let url = format!("http://{addr}{path}");
    let status = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.expect("GET").status() }
    };
    assert_eq!(
        status(url.clone()).await,
        200,
        "{path} on a running replica"
    );
    replica.start_draining();
    assert_eq!(status(url).await, 200, "{path} on a draining replica");
    replica.shutdown_token().cancel();
}

#[test]
fn aws_tasks_check_themselves_without_a_shell_and_log_json_to_cloudwatch() {
    let stack = Stack::new(&[]);
    let c = stack.container();
    assert_eq!(
        c["HealthCheck"]["Command"],
        json!(["CMD", BINARY, "--healthcheck"]),
        "exec form: the distroless image has no shell"
    );
    let dockerfile = read(&root().join("Dockerfile"));
    assert!(
        dockerfile.contains(&format!("ENTRYPOINT [\"{BINARY}\"]")),
        "the image's binary is {BINARY}"
    );
    let logs = &c["LogConfiguration"];
    assert_eq!(logs["LogDriver"], "awslogs");
    assert_eq!(logs["Options"]["awslogs-group"], json!({"Ref": "LogGroup"}));
    assert_eq!(stack.env("TETHER_LOG_FORMAT").as_deref(), Some("json"));
}

#[test]
fn aws_replicas_run_with_the_defaults_the_balancer_was_set_for() {
    let config_rs = read(&root().join("server/src/config.rs"));
    for (name, stack) in stacks() {
        let secrets = stack.container()["Secrets"].clone();
        let secret_names = secrets
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| text(&s["Name"]));
        for var in stack
            .environment()
            .into_iter()
            .map(|(n, _)| n)
            .chain(secret_names)
        {
            assert!(
                config_rs.contains(&format!("env = \"{var}\"")),
                "{name}: {var} is not a knob of the replica"
            );
        }
    }
    let stack = Stack::new(&[]);
    // The balancer settings are derived from these defaults; the route
    // must differ per task, which one task definition cannot do.
    for knob in [
        "TETHER_KEEPALIVE_SECS",
        "TETHER_COOKIE_NAME",
        "TETHER_SESSION_IDLE_SECS",
        "TETHER_ROUTE",
        "TETHER_PATH",
    ] {
        assert_eq!(stack.env(knob), None, "the task definition sets {knob}");
    }
    // One port from the listen address to the target group and the peers.
    let listen: std::net::SocketAddr = stack
        .env("TETHER_LISTEN")
        .map(|l| l.parse().expect("an address"))
        .unwrap_or(Config::default().listen);
    let container_port = number(&stack.container()["PortMappings"][0]["ContainerPort"]);
    let tg = stack.resource("AWS::ElasticLoadBalancingV2::TargetGroup");
    let service = stack.resource("AWS::ECS::Service");
    assert_eq!(u64::from(listen.port()), container_port);
    assert_eq!(number(&tg["Port"]), container_port);
    assert_eq!(
        number(&service["LoadBalancers"][0]["ContainerPort"]),
        container_port
    );
    let peers = stack.env("TETHER_PEERS").expect("TETHER_PEERS");
    assert!(peers.ends_with(&format!(":{container_port}")), "{peers}");
}

#[test]
fn aws_the_session_cap_and_the_open_file_limit_follow_the_tasks_memory() {
    let stack = Stack::new(&[]);
    for memory in allowed_values(&stack, "TaskMemory") {
        let mib: u64 = memory.parse().expect("MiB");
        let cpu = [256u64, 512, 1024, 2048, 4096]
            .into_iter()
            .find(|c| fargate_memory_for(*c).contains(&mib))
            .expect("some CPU size takes this memory");
        let s = Stack::new(&[("TaskCpu", &cpu.to_string()), ("TaskMemory", &memory)]);
        let cap = s.env_number("TETHER_MAX_SESSIONS");
        // Sessions with an open stream may fill at most the share of the
        // memory meant for them.
        let budget = (mib * 1024 * 1024) as f64 * SESSION_MEMORY_SHARE;
        assert!(
            (cap * SESSION_BYTES) as f64 <= budget,
            "{mib} MiB: {cap} sessions of {SESSION_BYTES} bytes exceed {SESSION_MEMORY_SHARE} of it"
        );
        assert!(
            cap >= 10_000 || mib < 1024,
            "{mib} MiB: a cap of {cap} wastes the task"
        );
        // Each such session holds a client connection, and forwarding one
        // more: the open-file limit covers both, with room to spare.
        let nofile = s.container()["Ulimits"]
            .as_array()
            .expect("Ulimits")
            .iter()
            .find(|u| u["Name"] == "nofile")
            .map(|u| number(&u["SoftLimit"]))
            .expect("a nofile limit");
        assert!(
            nofile >= 2 * cap + 1024,
            "{mib} MiB: nofile {nofile} for {cap} sessions"
        );
    }
    // The default task: well below the replica's own 100 000.
    assert!(stack.env_number("TETHER_MAX_SESSIONS") < Config::default().max_sessions as u64);
}

/// What listener `listener` (a logical id) does with a request for `path`:
/// its rules by priority, the first whose path pattern matches, else its
/// default action.
fn action_for(stack: &Stack, listener: &str, path: &str) -> Value {
    let l = stack.resource_by_id(listener);
    let mut rules: Vec<Value> = stack
        .resources("AWS::ElasticLoadBalancingV2::ListenerRule")
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r["ListenerArn"] == json!({ "Ref": listener }))
        .collect();
    rules.sort_by_key(|r| number(&r["Priority"]));
    let matches = |r: &Value| {
        r["Conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .all(|c| {
                assert_eq!(
                    c["Field"], "path-pattern",
                    "the evaluator reads path rules only"
                );
                let values = c["PathPatternConfig"]["Values"].as_array().expect("values");
                values.iter().any(|v| glob(&text(v), path))
            })
    };
    match rules.iter().find(|r| matches(r)) {
        Some(rule) => rule["Actions"][0].clone(),
        None => l["DefaultActions"][0].clone(),
    }
}

/// An ALB path pattern (`*` matches any run of characters, `?` one).
fn glob(pattern: &str, path: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), path.chars().collect());
    fn go(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    go(&p, &s)
}

fn with_certificate() -> Stack {
    Stack::new(&[
        ("CertificateArn", CERTIFICATE),
        ("DomainName", "mcp.example.com"),
    ])
}

#[test]
fn aws_with_a_certificate_only_https_is_open_and_clients_get_its_domain() {
    let plain = Stack::new(&[]);
    assert_eq!(plain.env("TETHER_COOKIE_SECURE").as_deref(), Some("false"));
    let listeners = plain.resources("AWS::ElasticLoadBalancingV2::Listener");
    assert_eq!(listeners.len(), 1);
    assert_eq!(number(&listeners[0].1["Port"]), 80);
    assert_eq!(listeners[0].1["Protocol"], "HTTP");
    assert_eq!(
        plain.output("McpUrl"),
        json!({"Fn::Sub": "http://${LoadBalancer.DNSName}/mcp"})
    );
    let named = Stack::new(&[("DomainName", "mcp.example.com")]);
    assert_eq!(named.output("McpUrl"), "http://mcp.example.com/mcp");

    // With a certificate, port 80 is closed: no MCP request crosses the
    // network in cleartext, not even to be told to use HTTPS.
    let tls = with_certificate();
    assert_eq!(tls.env("TETHER_COOKIE_SECURE").as_deref(), Some("true"));
    let listeners = tls.resources("AWS::ElasticLoadBalancingV2::Listener");
    assert_eq!(listeners.len(), 1, "one listener, HTTPS");
    let l = &listeners[0].1;
    assert_eq!(
        (number(&l["Port"]), text(&l["Protocol"])),
        (443, "HTTPS".to_owned())
    );
    assert!(ALB_TLS_POLICIES.contains(&text(&l["SslPolicy"]).as_str()));
    assert_eq!(l["Certificates"][0]["CertificateArn"], CERTIFICATE);
    let sg = tls.resource_by_id("LoadBalancerSecurityGroup");
    let ports: Vec<u64> = sg["SecurityGroupIngress"]
        .as_array()
        .expect("ingress")
        .iter()
        .map(|r| number(&r["FromPort"]))
        .collect();
    assert_eq!(ports, [443]);
    // The URL names the host the certificate covers, not the balancer's
    // own name, which no certificate covers.
    assert_eq!(tls.output("McpUrl"), "https://mcp.example.com/mcp");
    let nameless = Stack::new(&[("CertificateArn", CERTIFICATE)]);
    assert_eq!(nameless.broken_rules(), ["CertificateNeedsDomainName"]);
}

#[test]
fn aws_only_the_mcp_paths_are_forwarded_everything_else_gets_a_json_rpc_404() {
    let mcp = Config::default().path;
    for stack in [Stack::new(&[]), with_certificate()] {
        for path in [mcp.as_str(), "/sse", "/messages"] {
            let action = action_for(&stack, "Listener", path);
            assert_eq!(action["Type"], "forward", "{path}");
            assert_eq!(action["TargetGroupArn"], json!({"Ref": "TargetGroup"}));
        }
        for path in [
            tether_server::ops::METRICS_PATH,
            tether_server::ops::READY_PATH,
            tether_server::ops::HEALTH_PATH,
            "/",
            "/mcp/",
            "/mcp/x",
            "/MCP",
            "/mcpx",
            "/sse/x",
            "/messages/x",
            "/admin",
        ] {
            let action = action_for(&stack, "Listener", path);
            assert_eq!(action["Type"], "fixed-response", "{path}");
            let response = &action["FixedResponseConfig"];
            assert_eq!(response["StatusCode"], "404");
            assert_eq!(response["ContentType"], "application/json");
            let body: Value =
                serde_json::from_str(&text(&response["MessageBody"])).expect("a JSON body");
            assert_eq!(body["jsonrpc"], "2.0");
            assert_eq!(body["id"], Value::Null);
            assert!(body["error"]["code"].is_i64() && body["error"]["message"].is_string());
        }
    }
    // Exact paths only: a wildcard would let more through than the list says.
    for (_, rule) in Stack::new(&[]).resources("AWS::ElasticLoadBalancingV2::ListenerRule") {
        for c in rule["Conditions"].as_array().expect("conditions") {
            for v in c["PathPatternConfig"]["Values"].as_array().expect("values") {
                let v = text(v);
                assert!(!v.contains(['*', '?']), "{v}");
            }
        }
    }
}

#[test]
fn aws_service_replaces_tasks_before_stopping_any() {
    let stack = Stack::new(&[]);
    let service = stack.resource("AWS::ECS::Service");
    assert_eq!(number(&service["DesiredCount"]), 3);
    assert_eq!(service["LaunchType"], "FARGATE");
    let deploy = &service["DeploymentConfiguration"];
    // New tasks first: a client loses its session once per rollout, not
    // once per batch of replaced tasks.
    assert_eq!(number(&deploy["MaximumPercent"]), 200);
    assert_eq!(number(&deploy["MinimumHealthyPercent"]), 100);
    assert_eq!(deploy["DeploymentCircuitBreaker"]["Rollback"], true);
    assert_eq!(service["AvailabilityZoneRebalancing"], "DISABLED");
    let task = stack.resource("AWS::ECS::TaskDefinition");
    assert_eq!(task["NetworkMode"], "awsvpc");
    // The target group reaches the load balancer through the rule.
    assert_eq!(
        stack.template["Resources"]["Service"]["DependsOn"],
        json!(["McpRule"])
    );
}

#[test]
fn aws_autoscaling_leaves_the_count_to_itself_and_protects_tasks_that_hold_sessions() {
    let fixed = Stack::new(&[]);
    assert!(
        fixed
            .resources("AWS::ApplicationAutoScaling::ScalableTarget")
            .is_empty()
    );
    assert_eq!(
        fixed.env("TETHER_TASK_PROTECTION").as_deref(),
        Some("false")
    );
    for (metric, expected) in [
        ("cpu", "ECSServiceAverageCPUUtilization"),
        ("memory", "ECSServiceAverageMemoryUtilization"),
    ] {
        let s = Stack::new(&[("AutoScaling", metric), ("TaskCount", "2")]);
        let service = s.resource("AWS::ECS::Service");
        // A DesiredCount here would reset the count at every stack update.
        assert!(service.get("DesiredCount").is_none(), "{service}");
        let target = s.resource("AWS::ApplicationAutoScaling::ScalableTarget");
        assert_eq!(target["ServiceNamespace"], "ecs");
        assert_eq!(target["ScalableDimension"], "ecs:service:DesiredCount");
        assert_eq!(
            target["ResourceId"],
            json!({"Fn::Sub": "service/${Cluster}/${Service.Name}"})
        );
        assert_eq!(number(&target["MinCapacity"]), 2);
        assert_eq!(number(&target["MaxCapacity"]), 4);
        let policy = s.resource("AWS::ApplicationAutoScaling::ScalingPolicy");
        assert_eq!(policy["PolicyType"], "TargetTrackingScaling");
        assert_eq!(policy["ScalingTargetId"], json!({"Ref": "ScalableTarget"}));
        let tracking = &policy["TargetTrackingScalingPolicyConfiguration"];
        assert_eq!(
            tracking["PredefinedMetricSpecification"]["PredefinedMetricType"],
            expected
        );
        assert_eq!(number(&tracking["TargetValue"]), 60);
        assert_eq!(s.env("TETHER_TASK_PROTECTION").as_deref(), Some("true"));
    }
    // The fewest may not exceed the most.
    let upside_down = Stack::new(&[
        ("AutoScaling", "cpu"),
        ("TaskCount", "3"),
        ("AutoScalingMaxTasks", "2"),
    ]);
    assert_eq!(upside_down.broken_rules(), ["AutoScalingMaxTasksAtLeast3"]);
    // Scale-in protection goes through the ECS agent with the task role.
    let s = Stack::new(&[("AutoScaling", "cpu")]);
    let task = s.resource("AWS::ECS::TaskDefinition");
    assert_eq!(
        task["TaskRoleArn"],
        json!({"Fn::GetAtt": ["TaskRole", "Arn"]})
    );
    let role = s.resource_by_id("TaskRole");
    let statements = &role["Policies"][0]["PolicyDocument"]["Statement"];
    assert_eq!(
        statements[0]["Action"],
        json!(["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"])
    );
    assert_eq!(
        statements[0]["Resource"],
        json!({"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${Cluster}/*"})
    );
}

#[test]
fn aws_replicas_find_each_other_by_dns_and_share_a_secret_from_secrets_manager() {
    let stack = Stack::new(&[("DiscoveryNamespace", "mcp.internal")]);
    // TETHER_PEERS names the Cloud Map service, which has one A record per
    // task (MULTIVALUE): the whole peer list in one name.
    let ns = stack.resource("AWS::ServiceDiscovery::PrivateDnsNamespace");
    assert_eq!(text(&ns["Vpc"]), stack.param("VpcId"));
    let discovery = stack.resource("AWS::ServiceDiscovery::Service");
    assert_eq!(
        discovery["NamespaceId"],
        json!({"Fn::GetAtt": ["Namespace", "Id"]})
    );
    assert_eq!(discovery["DnsConfig"]["RoutingPolicy"], "MULTIVALUE");
    assert_eq!(discovery["DnsConfig"]["DnsRecords"][0]["Type"], "A");
    assert_eq!(
        stack.env("TETHER_PEERS"),
        Some(format!(
            "{}.{}:8080",
            text(&discovery["Name"]),
            text(&ns["Name"])
        ))
    );
    assert_eq!(text(&ns["Name"]), "mcp.internal");
    let service = stack.resource("AWS::ECS::Service");
    assert_eq!(
        service["ServiceRegistries"],
        json!([{"RegistryArn": {"Fn::GetAtt": ["DiscoveryService", "Arn"]}}])
    );
    // A DNS answer names at most 8 tasks: the most tasks that can run at
    // once (a rollout at MaximumPercent) must fit in it.
    let surge = number(&service["DeploymentConfiguration"]["MaximumPercent"]);
    for count in ["TaskCount", "AutoScalingMaxTasks"] {
        let most = number(&stack.parameter(count)["MaxValue"]);
        assert!(
            most * surge / 100 <= DNS_ANSWER_MAX,
            "{count} up to {most} at {surge} %"
        );
    }

    // The peer secret: generated, long enough, read by ECS into the
    // container's environment, readable by the execution role alone.
    let secret = stack.resource("AWS::SecretsManager::Secret");
    let generated = &secret["GenerateSecretString"];
    assert!(number(&generated["PasswordLength"]) >= tether_server::config::MIN_PEER_SECRET as u64);
    assert_eq!(
        generated["ExcludePunctuation"], true,
        "the value travels in a header"
    );
    let c = stack.container();
    assert_eq!(
        c["Secrets"],
        json!([{"Name": "TETHER_PEER_SECRET", "ValueFrom": {"Ref": "PeerSecret"}}])
    );
    assert_eq!(
        stack.env("TETHER_PEER_SECRET"),
        None,
        "never in plain environment"
    );
    let execution = stack.resource_by_id("ExecutionRole");
    let grants: Vec<&Value> = execution["Policies"]
        .as_array()
        .expect("policies")
        .iter()
        .flat_map(|p| {
            p["PolicyDocument"]["Statement"]
                .as_array()
                .expect("statements")
        })
        .collect();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["Action"], "secretsmanager:GetSecretValue");
    assert_eq!(grants[0]["Resource"], json!({"Ref": "PeerSecret"}));
}

#[test]
fn aws_only_the_load_balancer_and_the_other_replicas_reach_a_replica() {
    for stack in [Stack::new(&[]), with_certificate()] {
        let groups = stack.resources("AWS::EC2::SecurityGroup");
        assert_eq!(groups.len(), 2);
        for (id, group) in groups {
            for rule in group["SecurityGroupIngress"].as_array().expect("ingress") {
                assert!(rule["Description"].is_string(), "{id}: {rule}");
                if id == "LoadBalancerSecurityGroup" {
                    let port = number(&rule["FromPort"]);
                    assert!([80, 443].contains(&port), "{id} opens {port}");
                    assert_eq!(rule["FromPort"], rule["ToPort"]);
                } else {
                    assert_eq!(
                        rule["SourceSecurityGroupId"],
                        json!({"Ref": "LoadBalancerSecurityGroup"}),
                        "{id} admits something other than the load balancer: {rule}"
                    );
                    assert!(rule.get("CidrIp").is_none() && rule.get("CidrIpv6").is_none());
                }
            }
        }
        // Forwarding: replica to replica on the service port, nothing else.
        let extra = stack.resources("AWS::EC2::SecurityGroupIngress");
        assert_eq!(extra.len(), 1);
        let peer = &extra[0].1;
        assert_eq!(peer["GroupId"], json!({"Ref": "TaskSecurityGroup"}));
        assert_eq!(
            peer["SourceSecurityGroupId"],
            json!({"Ref": "TaskSecurityGroup"})
        );
        assert_eq!(
            (number(&peer["FromPort"]), number(&peer["ToPort"])),
            (8080, 8080)
        );
        let service = stack.resource("AWS::ECS::Service");
        assert_eq!(
            service["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"],
            json!([{"Ref": "TaskSecurityGroup"}])
        );
    }
}

#[test]
fn aws_access_logs_and_container_insights_are_parameters() {
    let off = Stack::new(&[]);
    assert_eq!(
        off.load_balancer_attribute("access_logs.s3.enabled"),
        "false"
    );
    assert!(
        !off.load_balancer_attributes()
            .contains_key("access_logs.s3.bucket")
    );
    let on = Stack::new(&[
        ("AccessLogBucket", "example-alb-logs"),
        ("ContainerInsights", "enabled"),
    ]);
    assert_eq!(on.load_balancer_attribute("access_logs.s3.enabled"), "true");
    assert_eq!(
        on.load_balancer_attribute("access_logs.s3.bucket"),
        "example-alb-logs"
    );
    let cluster = on.resource("AWS::ECS::Cluster");
    assert_eq!(
        cluster["ClusterSettings"],
        json!([{"Name": "containerInsights", "Value": "enabled"}])
    );
    let logs = off.resource("AWS::Logs::LogGroup");
    assert_eq!(number(&logs["RetentionInDays"]), 30);
}

/// A directory of rendered templates, one per combination, removed on drop.
struct Rendered {
    dir: PathBuf,
    files: Vec<(String, PathBuf)>,
}

impl Rendered {
    fn new(tag: &str, which: impl Fn(&Stack) -> bool) -> Rendered {
        let dir = std::env::temp_dir().join(format!("tether-aws-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut files = Vec::new();
        for (i, (name, stack)) in stacks().into_iter().enumerate() {
            if !which(&stack) {
                continue;
            }
            let path = dir.join(format!("combination-{i:02}.json"));
            let text = serde_json::to_string_pretty(&stack.render()).expect("JSON");
            std::fs::write(&path, text).expect("write");
            files.push((name, path));
        }
        Rendered { dir, files }
    }
}

impl Drop for Rendered {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `program` (from PATH, or `$env_var` when set), failing the test
/// with how to install it when it is missing.
fn tool(program: &str, env_var: &str, args: &[&OsStr]) -> std::process::Output {
    let exe = std::env::var_os(env_var).unwrap_or_else(|| program.into());
    Command::new(&exe).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {} ({e}). tests/run.sh installs it: cfn-lint from tests/requirements.txt \
             into tests/.venv (bin on PATH), checkov from tests/requirements-checkov.txt into \
             tests/.venv/checkov (TETHER_CHECKOV). By hand: \
             python3 -m venv tests/.venv && tests/.venv/bin/pip install -r tests/requirements.txt; \
             python3 -m venv tests/.venv/checkov && tests/.venv/checkov/bin/pip install -r \
             tests/requirements-checkov.txt; export PATH=$PWD/tests/.venv/bin:$PATH \
             TETHER_CHECKOV=$PWD/tests/.venv/checkov/bin/checkov",
            exe.to_string_lossy()
        )
    })
}

/// The version pinned as `name==version` in a requirements file.
fn pinned(file: &str, name: &str) -> String {
    read(&root().join("tests").join(file))
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{name}=="))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("tests/{file} pins no {name}"))
}

#[test]
fn aws_cfn_lint_passes_on_the_template_and_every_rendered_combination() {
    // The pinned version, so that a result does not depend on whichever
    // cfn-lint a machine happens to have first on its PATH.
    let version = tool("cfn-lint", "TETHER_CFN_LINT", &["--version".as_ref()]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("cfn-lint {}", pinned("requirements.txt", "cfn-lint")),
        "the cfn-lint on PATH is not the pinned one (tests/requirements.txt); \
         tests/run.sh puts tests/.venv/bin first on PATH"
    );
    let rendered = Rendered::new("lint", |_| true);
    assert!(rendered.files.len() >= 24);
    let template = template_path();
    let mut args: Vec<&OsStr> = vec![template.as_os_str()];
    args.extend(rendered.files.iter().map(|(_, p)| p.as_os_str()));
    let out = tool("cfn-lint", "TETHER_CFN_LINT", &args);
    let names: Vec<String> = rendered
        .files
        .iter()
        .map(|(n, p)| format!("{}: {n}", p.display()))
        .collect();
    assert!(
        out.status.success(),
        "cfn-lint failed ({}):\n{}{}\nthe combinations:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        names.join("\n")
    );
}

/// The checkov checks that every rendered template fails on purpose,
/// each with the reason it does not apply.
const CHECKOV_EXPECTED: &[(&str, &str)] = &[
    (
        "CKV_AWS_158",
        "CloudWatch Logs group without a customer-managed KMS key: CloudWatch Logs encrypts \
         at rest anyway, the replicas log no secrets (design rule), and a key would need a \
         key policy and cost per request; add one if your policy demands it",
    ),
    (
        "CKV_AWS_149",
        "the peer secret under the AWS-managed key (aws/secretsmanager): a customer key adds \
         a key policy and kms:Decrypt for the execution role, and protects the secret from no \
         one the account does not already trust",
    ),
];

/// More, for the stacks without a certificate: HTTP on port 80 is what the
/// user asked for by giving none (the README says to give one).
const CHECKOV_EXPECTED_HTTP_ONLY: &[(&str, &str)] = &[
    (
        "CKV_AWS_2",
        "no certificate given: the listener is HTTP by choice",
    ),
    (
        "CKV_AWS_103",
        "no certificate given: there is no TLS to have a version",
    ),
    (
        "CKV_AWS_260",
        "no certificate given: port 80 is the public MCP endpoint, narrowed by IngressCidr",
    ),
];

/// More, for the stacks whose parameters leave a billed option off; the
/// tests above check that the parameter turns it on.
const CHECKOV_EXPECTED_INSIGHTS_OFF: (&str, &str) = (
    "CKV_AWS_65",
    "Container Insights off: a parameter (ContainerInsights), billed as custom metrics",
);
const CHECKOV_EXPECTED_ACCESS_LOGS_OFF: (&str, &str) = (
    "CKV_AWS_91",
    "access logs off: a parameter (AccessLogBucket); the bucket and its policy are yours",
);

/// The checkov checks `stack` is expected to fail, and only those.
fn checkov_expected(stack: &Stack) -> BTreeSet<&'static str> {
    let mut ids: BTreeSet<&str> = CHECKOV_EXPECTED.iter().map(|(id, _)| *id).collect();
    if !stack.condition("HasCertificate") {
        ids.extend(CHECKOV_EXPECTED_HTTP_ONLY.iter().map(|(id, _)| *id));
    }
    if stack.param("ContainerInsights") == "disabled" {
        ids.insert(CHECKOV_EXPECTED_INSIGHTS_OFF.0);
    }
    if !stack.condition("HasAccessLogs") {
        ids.insert(CHECKOV_EXPECTED_ACCESS_LOGS_OFF.0);
    }
    ids
}

#[test]
fn aws_checkov_fails_only_the_reviewed_checks() {
    let version = tool("checkov", "TETHER_CHECKOV", &["--version".as_ref()]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        pinned("requirements-checkov.txt", "checkov"),
        "the checkov found is not the pinned one (tests/requirements-checkov.txt)"
    );
    let rendered = Rendered::new("checkov", |_| true);
    let out = tool(
        "checkov",
        "TETHER_CHECKOV",
        &[
            "--framework".as_ref(),
            "cloudformation".as_ref(),
            // Offline: no download of checks or guidelines.
            "--skip-download".as_ref(),
            "--quiet".as_ref(),
            "--output".as_ref(),
            "json".as_ref(),
            "--directory".as_ref(),
            rendered.dir.as_os_str(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "checkov gave no JSON report ({e}, {}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let summary = &report["summary"];
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    assert!(
        number(&summary["passed"]) > 100,
        "checkov checked almost nothing: {summary}"
    );
    let mut failed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in report["results"]["failed_checks"]
        .as_array()
        .expect("failed_checks")
    {
        let file = text(&f["file_path"]);
        let file = file.trim_start_matches('/').to_owned();
        failed.entry(file).or_default().insert(text(&f["check_id"]));
    }
    let stacks = stacks();
    for (name, path) in &rendered.files {
        let file = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let stack = &stacks.iter().find(|(n, _)| n == name).expect("its stack").1;
        let expected: BTreeSet<String> = checkov_expected(stack)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let got = failed.remove(&file).unwrap_or_default();
        assert_eq!(
            got, expected,
            "{name}: checkov's failures (left) differ from the reviewed list (right): a new \
             failure needs a fix or a reviewed reason, a reviewed one that passes now goes"
        );
    }
    assert!(
        failed.is_empty(),
        "failures in files not rendered here: {failed:?}"
    );
}

#[test]
fn aws_a_redis_url_reaches_every_replica_and_only_when_given() {
    let none = Stack::new(&[]);
    let param = none.parameter("RedisUrl");
    assert_eq!(param["Default"], "");
    assert_eq!(param["NoEcho"], true, "the URL may carry a password");
    assert_eq!(none.env("TETHER_REDIS_URL"), None);
    let url = "redis://tether.abc123.use1.cache.amazonaws.com:6379/0";
    let shared = Stack::new(&[("RedisUrl", url)]);
    assert_eq!(shared.env("TETHER_REDIS_URL").as_deref(), Some(url));
    // A replica with Redis needs the peer secret, which every task has.
    let secrets = &shared.container()["Secrets"];
    assert!(
        secrets
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["Name"] == "TETHER_PEER_SECRET")),
        "{secrets}"
    );
    // What a replica would start with: the URL parses, the secret is there.
    let config = Config {
        redis_url: Some(url.into()),
        peer_secret: Some("p".repeat(64).as_str().into()),
        ..Config::default()
    };
    config
        .check()
        .expect("a replica starts with the template's Redis URL");
}
