//! A new configuration for a running filter (Envoy's xDS update, or
//! `erpgate gateway` reloading its file): what it keeps and what it drops.

use super::*;

fn configured(edit: impl FnOnce(&mut serde_json::Value)) -> config::Config {
    let mut json: serde_json::Value = serde_json::from_str(&config_json(true)).unwrap();
    edit(&mut json);
    config::parse(json.to_string().as_bytes()).unwrap()
}

/// Introspects `TOKEN` once on a fresh plugin, so it is cached.
fn cached(plugin: &Plugin<MockHost>) {
    let (mut a, _) = start(plugin, 10, TOKEN);
    let token = dispatched_token(plugin.host.dispatches().last().unwrap());
    plugin.host.enter(10);
    a.on_call_response(plugin, token, active_reply);
}

#[test]
fn a_route_edit_keeps_the_caches_and_an_introspection_edit_drops_them() {
    let first = Plugin::new(MockHost::default(), configured(|_| {}), None);
    cached(&first);
    assert_eq!(first.stats().introspection_calls, 1);

    // A new route: the cached verdict serves it with no call, counters go on.
    let routes = configured(|c| {
        c["policy"]["routes"].as_array_mut().unwrap().insert(
            0,
            serde_json::json!({"name": "new", "path": {"exact": "/new"}, "public": true}),
        );
    });
    let second = Plugin::reconfigured(MockHost::default(), routes, None, &first);
    let (_s, flow) = start(&second, 20, TOKEN);
    assert_eq!(flow, Flow::Continue, "served from the kept cache");
    assert!(second.host.dispatches().is_empty());
    let stats = second.stats();
    assert_eq!(stats.introspection_calls, 1, "counters carry on");
    assert_eq!(stats.introspection_cache_hits, 1);

    // Another introspection cache setting: the verdict is not trusted.
    let introspection = |c: &mut serde_json::Value| {
        c["policy"]["introspection"]["cache"]["max_ttl_s"] = 30.into();
    };
    let third = Plugin::reconfigured(
        MockHost::default(),
        configured(introspection),
        None,
        &second,
    );
    let (mut s, flow) = start(&third, 30, TOKEN);
    assert_eq!(flow, Flow::Pause, "introspected again");
    assert_eq!(third.host.dispatches().len(), 1);
    let token = dispatched_token(third.host.dispatches().last().unwrap());
    third.host.enter(30);
    s.on_call_response(&third, token, active_reply);

    // The same policy with the introspection call going to another cluster:
    // nothing is kept either.
    let moved = configured(|c| {
        c["policy"]["introspection"]["cache"]["max_ttl_s"] = 30.into();
        c["clusters"]["identity"] = "elsewhere".into();
    });
    let fourth = Plugin::reconfigured(MockHost::default(), moved, None, &third);
    let (_s, flow) = start(&fourth, 40, TOKEN);
    assert_eq!(flow, Flow::Pause, "other clusters: introspected again");
    // While the unchanged configuration keeps third's verdict.
    let fifth = Plugin::reconfigured(MockHost::default(), configured(introspection), None, &third);
    let (_s, flow) = start(&fifth, 50, TOKEN);
    assert_eq!(flow, Flow::Continue);
}

/// A refused configuration names every error of its policy, each with its
/// field path, in the one line the filter logs.
#[test]
fn a_refused_configuration_names_every_error() {
    let mut json: serde_json::Value = serde_json::from_str(&config_json(true)).unwrap();
    json["policy"]["routes"][0]["path"] = serde_json::json!({"prefix": "no-slash"});
    json["policy"]["routes"][2]["methods"] = serde_json::json!([]);
    let Err(error) = config::parse(json.to_string().as_bytes()) else {
        panic!("accepted");
    };
    let line = error.to_string();
    assert!(line.contains("policy.routes[0].path.prefix"), "{line}");
    assert!(line.contains("policy.routes[2].methods"), "{line}");
}
