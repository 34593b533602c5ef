//! The AWS deployment (`deploy/aws/tether.json`, CloudFormation) against the
//! replica it deploys: the balancer settings that long-lived SSE sessions
//! depend on are derived from the replica's defaults, and these tests keep
//! them derived, so that changing a default in `server/src/config.rs` (or a
//! value in the template) without the other fails here instead of dropping
//! sessions in production. `cfn-lint` checks the rest of the template.
//!
//! The template is evaluated for each combination of the parameters that
//! change what matters (stickiness type, with or without a certificate): a
//! small evaluator resolves `Ref` to parameters, `Fn::If` and
//! `AWS::NoValue`, and resource `Condition`s.

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tether_server::Config;

/// After its drain bound, a replica gives the streams still open this long
/// to close before it exits.
const EXIT_GRACE_SECS: u64 = tether_server::replica::EXIT_GRACE.as_secs();
/// The longest `stopTimeout` Fargate accepts.
const FARGATE_MAX_STOP_TIMEOUT: u64 = 120;
/// Keep-alives an SSE stream may miss in a row before the balancer's idle
/// timeout cuts it. One late keep-alive (a busy replica) must not cost a
/// stream.
const MISSED_KEEPALIVES_TOLERATED: u64 = 3;
/// What the image runs (`ENTRYPOINT` of the Dockerfile).
const BINARY: &str = "/usr/local/bin/tether-server";

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

/// The template evaluated with its parameter defaults, some overridden.
struct Stack {
    template: Value,
    params: Map<String, Value>,
}

impl Stack {
    fn new(overrides: &[(&str, &str)]) -> Stack {
        let template: Value = serde_json::from_str(&read(&template_path()))
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", template_path().display()));
        let mut params = Map::new();
        for (name, p) in template["Parameters"].as_object().expect("Parameters") {
            if let Some(d) = p.get("Default") {
                params.insert(name.clone(), d.clone());
            }
        }
        for (name, value) in overrides {
            assert!(
                template["Parameters"].get(*name).is_some(),
                "no parameter {name}"
            );
            params.insert((*name).to_owned(), Value::String((*value).to_owned()));
        }
        Stack { template, params }
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

    fn truth(&self, c: &Value) -> bool {
        let (f, args) = single_key(c).unwrap_or_else(|| panic!("not a condition: {c}"));
        let arg = |i: usize| &args[i];
        match f {
            "Fn::Equals" => self.resolve(arg(0)) == self.resolve(arg(1)),
            "Fn::Not" => !self.truth(arg(0)),
            "Fn::And" => args.as_array().expect("list").iter().all(|a| self.truth(a)),
            "Fn::Or" => args.as_array().expect("list").iter().any(|a| self.truth(a)),
            "Condition" => self.condition(args.as_str().expect("name")),
            _ => panic!("the evaluator does not know {f}"),
        }
    }

    /// `None` for `AWS::NoValue`; other intrinsics (resource `Ref`,
    /// `Fn::GetAtt`, `Fn::Sub`) stay as they are.
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

    /// The resolved properties of the resources of type `ty` that this
    /// stack creates, by logical id.
    fn resources(&self, ty: &str) -> Vec<(String, Value)> {
        let all = self.template["Resources"].as_object().expect("Resources");
        all.iter()
            .filter(|(_, r)| r["Type"] == ty)
            .filter(|(_, r)| r["Condition"].as_str().is_none_or(|c| self.condition(c)))
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

    /// Target group attributes as a map (the value may come from a `Ref`).
    fn target_group_attributes(&self) -> Map<String, Value> {
        self.resource("AWS::ElasticLoadBalancingV2::TargetGroup")["TargetGroupAttributes"]
            .as_array()
            .expect("TargetGroupAttributes")
            .iter()
            .map(|a| (text(&a["Key"]), Value::String(text(&a["Value"]))))
            .collect()
    }

    fn load_balancer_attribute(&self, key: &str) -> String {
        let lb = self.resource("AWS::ElasticLoadBalancingV2::LoadBalancer");
        let attrs = lb["LoadBalancerAttributes"].as_array().expect("attributes");
        let a = attrs
            .iter()
            .find(|a| a["Key"] == key)
            .unwrap_or_else(|| panic!("the load balancer sets no {key}"));
        text(&a["Value"])
    }
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

fn attribute(attrs: &Map<String, Value>, key: &str) -> String {
    text(
        attrs
            .get(key)
            .unwrap_or_else(|| panic!("the target group sets no {key}: {attrs:?}")),
    )
}

#[test]
fn aws_stickiness_pins_on_the_replicas_cookie_or_the_balancers_own() {
    let defaults = Config::default();
    let stack = Stack::new(&[]);
    let choice = stack.parameter("Stickiness");
    assert_eq!(choice["Default"], "app_cookie");
    assert_eq!(
        choice["AllowedValues"],
        serde_json::json!(["app_cookie", "lb_cookie"])
    );
    // A session lives until it has been idle for session_idle_secs; the
    // balancer must keep its client pinned at least that long (it renews
    // its cookie on every response, so this is an idle bound too).
    let seconds = stack.parameter("StickinessSeconds");
    assert!(number(&seconds["MinValue"]) >= defaults.session_idle_secs);
    assert!(number(&seconds["Default"]) >= defaults.session_idle_secs);

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

#[test]
fn aws_deregistration_delay_is_the_drain_bound_and_sigkill_waits_for_the_drain() {
    let drain = Config::default().drain_secs;
    let stack = Stack::new(&[]);
    // ECS deregisters a stopping task, waits this long (requests in flight
    // finish; nothing new arrives), and only then sends SIGTERM.
    let attrs = stack.target_group_attributes();
    assert_eq!(
        number(&attrs["deregistration_delay.timeout_seconds"]),
        drain,
        "requests in flight get the replica's drain bound (drain_secs) on ECS too"
    );
    // After SIGTERM the replica drains for at most drain_secs, then closes
    // what is left: SIGKILL (stopTimeout later) must come after that.
    let stop = number(&stack.container()["StopTimeout"]);
    assert!(
        stop > drain + EXIT_GRACE_SECS,
        "stopTimeout {stop}s must exceed the drain bound {drain}s + {EXIT_GRACE_SECS}s"
    );
    assert!(stop <= FARGATE_MAX_STOP_TIMEOUT);
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
        serde_json::json!(["CMD", BINARY, "--healthcheck"]),
        "exec form: the distroless image has no shell"
    );
    let dockerfile = read(&root().join("Dockerfile"));
    assert!(
        dockerfile.contains(&format!("ENTRYPOINT [\"{BINARY}\"]")),
        "the image's binary is {BINARY}"
    );
    let logs = &c["LogConfiguration"];
    assert_eq!(logs["LogDriver"], "awslogs");
    assert_eq!(
        logs["Options"]["awslogs-group"],
        serde_json::json!({"Ref": "LogGroup"})
    );
    assert_eq!(stack.env("TETHER_LOG_FORMAT").as_deref(), Some("json"));
}

#[test]
fn aws_replicas_run_with_the_defaults_the_balancer_was_set_for() {
    let config_rs = read(&root().join("server/src/config.rs"));
    let stack = Stack::new(&[]);
    for (name, _) in stack.environment() {
        assert!(
            config_rs.contains(&format!("env = \"{name}\"")),
            "{name} is not a knob of the replica"
        );
    }
    // The balancer settings above are derived from these defaults; the
    // route must differ per task, which one task definition cannot do.
    for knob in [
        "TETHER_DRAIN_SECS",
        "TETHER_KEEPALIVE_SECS",
        "TETHER_COOKIE_NAME",
        "TETHER_SESSION_IDLE_SECS",
        "TETHER_ROUTE",
    ] {
        assert_eq!(stack.env(knob), None, "the task definition sets {knob}");
    }
    // One port from the listen address to the target group.
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
}

/// What listener `listener` (a logical id) does with a request for `path`:
/// its rules by priority, the first whose path pattern matches, else its
/// default action.
fn action_for(stack: &Stack, listener: &str, path: &str) -> Value {
    let listeners = stack.resources("AWS::ElasticLoadBalancingV2::Listener");
    let (_, l) = listeners
        .iter()
        .find(|(id, _)| id == listener)
        .unwrap_or_else(|| panic!("no listener {listener} in this stack"));
    let mut rules: Vec<Value> = stack
        .resources("AWS::ElasticLoadBalancingV2::ListenerRule")
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r["ListenerArn"] == serde_json::json!({ "Ref": listener }))
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

/// An ALB path pattern (`*` matches any run of characters).
fn glob(pattern: &str, path: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == path,
        Some((head, rest)) => {
            path.starts_with(head)
                && (0..=path.len() - head.len()).any(|i| {
                    path.is_char_boundary(head.len() + i) && glob(rest, &path[head.len() + i..])
                })
        }
    }
}

fn with_certificate() -> Stack {
    Stack::new(&[(
        "CertificateArn",
        "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000",
    )])
}

#[test]
fn aws_https_marks_the_cookie_secure_and_http_redirects() {
    let mcp = Config::default().path;
    let plain = Stack::new(&[]);
    assert_eq!(plain.env("TETHER_COOKIE_SECURE").as_deref(), Some("false"));
    assert_eq!(
        plain
            .resources("AWS::ElasticLoadBalancingV2::Listener")
            .len(),
        1
    );
    assert_eq!(action_for(&plain, "HttpListener", &mcp)["Type"], "forward");

    let tls = with_certificate();
    assert_eq!(tls.env("TETHER_COOKIE_SECURE").as_deref(), Some("true"));
    let redirect = action_for(&tls, "HttpListener", &mcp);
    assert_eq!(redirect["Type"], "redirect");
    assert_eq!(redirect["RedirectConfig"]["Protocol"], "HTTPS");
    let https = action_for(&tls, "HttpsListener", &mcp);
    assert_eq!(https["Type"], "forward");
}

#[test]
fn aws_operations_endpoints_are_not_public() {
    for (stack, listener) in [
        (Stack::new(&[]), "HttpListener"),
        (with_certificate(), "HttpsListener"),
    ] {
        for path in [
            tether_server::ops::METRICS_PATH,
            tether_server::ops::READY_PATH,
            tether_server::ops::HEALTH_PATH,
        ] {
            let action = action_for(&stack, listener, path);
            assert_eq!(action["Type"], "fixed-response", "{listener} {path}");
        }
        // The MCP transports are.
        for path in [Config::default().path.as_str(), "/sse", "/messages"] {
            let action = action_for(&stack, listener, path);
            assert_eq!(action["Type"], "forward", "{listener} {path}");
        }
    }
}

#[test]
fn aws_service_runs_three_tasks_and_replaces_them_before_stopping_any() {
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
}

#[test]
fn aws_only_the_load_balancer_is_exposed() {
    for stack in [Stack::new(&[]), with_certificate()] {
        assert!(
            stack.resources("AWS::EC2::SecurityGroupIngress").is_empty(),
            "ingress rules live in the security groups"
        );
        let groups = stack.resources("AWS::EC2::SecurityGroup");
        assert_eq!(groups.len(), 2);
        for (id, group) in groups {
            let rules = group["SecurityGroupIngress"].as_array().expect("ingress");
            for rule in rules {
                if id == "LoadBalancerSecurityGroup" {
                    let port = number(&rule["FromPort"]);
                    assert!([80, 443].contains(&port), "{id} opens {port}");
                    assert_eq!(rule["FromPort"], rule["ToPort"]);
                } else {
                    assert_eq!(
                        rule["SourceSecurityGroupId"],
                        serde_json::json!({"Ref": "LoadBalancerSecurityGroup"}),
                        "{id} admits something other than the load balancer: {rule}"
                    );
                    assert!(rule.get("CidrIp").is_none() && rule.get("CidrIpv6").is_none());
                }
            }
        }
        let service = stack.resource("AWS::ECS::Service");
        assert_eq!(
            service["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"],
            serde_json::json!([{"Ref": "TaskSecurityGroup"}])
        );
    }
}

/// Runs `cfn-lint` (the version pinned in `tests/requirements.txt`) with
/// `args`.
fn cfn_lint(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new("cfn-lint")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run cfn-lint ({e}). tests/run.sh installs it (tests/requirements.txt) into \
             tests/.venv and puts its bin on PATH; for a local run: \
             python3 -m venv /tmp/cfnvenv && /tmp/cfnvenv/bin/pip install cfn-lint==<pinned> \
             && PATH=/tmp/cfnvenv/bin:$PATH"
            )
        })
}

#[test]
fn aws_cfn_lint_passes() {
    // The pinned version, so that a result does not depend on whichever
    // cfn-lint a machine happens to have first on its PATH.
    let requirements = read(&root().join("tests/requirements.txt"));
    let pinned = requirements
        .lines()
        .find_map(|l| l.trim().strip_prefix("cfn-lint=="))
        .expect("tests/requirements.txt pins cfn-lint");
    let version = cfn_lint(&["--version".as_ref()]);
    let version = String::from_utf8_lossy(&version.stdout);
    assert_eq!(
        version.trim(),
        format!("cfn-lint {pinned}"),
        "the cfn-lint on PATH is not the pinned one (tests/requirements.txt); \
         tests/run.sh puts tests/.venv/bin first on PATH"
    );

    let path = template_path();
    let out = cfn_lint(&[path.as_os_str()]);
    assert!(
        out.status.success(),
        "cfn-lint {} failed ({}):\n{}{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
