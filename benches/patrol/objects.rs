//! The fixture's objects as the API server would serve them: realistic pods, nodes, workloads,
//! PVCs, events, TLS Secrets and node metrics.

use super::*;

pub(crate) fn container(name: &str, image: &str, cpu: &str, mem: &str, sa_volume: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
        ],
        "env": [
            {"name": "RUST_LOG", "value": "info,tower_http=warn"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": format!("{name}-db"), "key": "url"}}}
        ],
        "resources": {
            "requests": {"cpu": cpu, "memory": mem},
            "limits": {"memory": mem}
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
            "initialDelaySeconds": 10, "timeoutSeconds": 1, "periodSeconds": 10,
            "successThreshold": 1, "failureThreshold": 3
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http", "scheme": "HTTP"},
            "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3
        },
        "volumeMounts": [
            {"name": "config", "readOnly": true, "mountPath": "/etc/app"},
            {"name": sa_volume, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "securityContext": {
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false
        }
    })
}

/// A sidecar or init container: no probes, no environment.
pub(crate) fn slim_container(
    name: &str,
    image: &str,
    cpu: &str,
    mem: &str,
    sa_volume: &str,
) -> Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": cpu, "memory": mem}, "limits": {"memory": mem}},
        "volumeMounts": [
            {"name": sa_volume, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    })
}

pub(crate) fn pod_json(s: Size, i: usize) -> Value {
    let p = plan(s, i);
    let (ns, name, app) = pod_identity(s, i);
    let created_min = match p.trouble {
        Trouble::Pending => 120,
        _ => 600 + mix(seed(4, i)) % (60 * 24 * 20),
    };
    let created = TimeDelta::minutes(created_min as i64);
    let sa_volume = format!("kube-api-access-{}", k8s_suffix(seed(5, i), 5));
    let version = format!("v1.{}.{}", i % 17, i % 5);
    let image = format!("registry.example.com/{app}:{version}");
    let cpu = ["100m", "250m", "500m", "50m"][i % 4];
    let mem = ["128Mi", "256Mi", "512Mi", "384Mi"][i % 4];
    let mut containers = vec![container("app", &image, cpu, mem, &sa_volume)];
    let sidecar = i.is_multiple_of(4);
    if sidecar {
        containers.push(slim_container(
            "envoy",
            "docker.io/envoyproxy/envoy:v1.31.2",
            "50m",
            "64Mi",
            &sa_volume,
        ));
    }
    let init = i % 8 == 1;
    let (owner_kind, owner_name, owner_uid) = match p.owner {
        Owner::DaemonSet(d) => ("DaemonSet", DAEMONSETS[d].1.to_string(), uid(seed(6, d))),
        Owner::StatefulSet(j, _) => ("StatefulSet", statefulset_name(j), uid(seed(7, j))),
        Owner::Deployment(j) => (
            "ReplicaSet",
            format!("{}-{}", deployment_name(j), template_hash(j)),
            uid(seed(8, j)),
        ),
    };
    let node = p.node.map(node_name);
    let started = ts(created - TimeDelta::seconds(20));
    let running = p.trouble != Trouble::Pending;
    let status_of = |c: &str, img: &str, k: u64| {
        let mut st = json!({
            "name": c,
            "state": {"running": {"startedAt": started}},
            "lastState": {},
            "ready": running,
            "restartCount": 0,
            "image": img,
            "imageID": format!("{}@sha256:{}", img.split(':').next().unwrap(), hex(seed(9, i) ^ k, 64)),
            "containerID": format!("containerd://{}", hex(seed(10, i) ^ k, 64)),
            "started": running,
            "volumeMounts": [
                {"name": "config", "mountPath": "/etc/app", "readOnly": true, "recursiveReadOnly": "Disabled"},
                {"name": sa_volume, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true, "recursiveReadOnly": "Disabled"}
            ]
        });
        if i % 13 == 5 {
            // An old restart, long outside the window.
            st["restartCount"] = json!(1);
            st["lastState"] = json!({"terminated": {"exitCode": 0, "reason": "Completed",
                "startedAt": ts(TimeDelta::days(9)), "finishedAt": ts(TimeDelta::days(8)),
                "containerID": format!("containerd://{}", hex(seed(11, i) ^ k, 64))}});
        }
        st
    };
    let mut statuses = vec![status_of("app", &image, 1)];
    if sidecar {
        statuses.push(status_of("envoy", "docker.io/envoyproxy/envoy:v1.31.2", 2));
    }
    let main = &mut statuses[0];
    match p.trouble {
        Trouble::None => {}
        Trouble::CrashLoop => {
            main["ready"] = json!(false);
            main["restartCount"] = json!(20 + i % 40);
            main["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
                "message": format!("back-off 5m0s restarting failed container=app pod={name}_{ns}({})", uid(seed(12, i)))}});
            main["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error",
                "startedAt": ts(TimeDelta::minutes(4)), "finishedAt": ts(TimeDelta::minutes(3)),
                "containerID": format!("containerd://{}", hex(seed(11, i), 64))}});
        }
        Trouble::OomKilled => {
            main["restartCount"] = json!(1);
            main["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled",
                "startedAt": ts(TimeDelta::hours(30)), "finishedAt": ts(TimeDelta::hours(2)),
                "containerID": format!("containerd://{}", hex(seed(11, i), 64))}});
        }
        Trouble::ImagePull => {
            main["ready"] = json!(false);
            main["started"] = json!(false);
            main["state"] = json!({"waiting": {"reason": "ImagePullBackOff",
                "message": format!("Back-off pulling image \"{image}-rc1\"")}});
        }
        Trouble::Pending => {}
    }
    let ready = if running && p.trouble == Trouble::None {
        "True"
    } else {
        "False"
    };
    let mut conditions = vec![
        json!({"type": "PodReadyToStartContainers", "status": if running { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": started}),
        json!({"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": started}),
        json!({"type": "Ready", "status": ready, "lastProbeTime": null, "lastTransitionTime": started}),
        json!({"type": "ContainersReady", "status": ready, "lastProbeTime": null, "lastTransitionTime": started}),
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts(created)}),
    ];
    let host_ip = p.node.map(|n| format!("10.0.{}.{}", n / 200, n % 200 + 20));
    let pod_ip = format!("10.1.{}.{}", i / 250, i % 250 + 2);
    let mut status = json!({
        "phase": if running { "Running" } else { "Pending" },
        "conditions": [],
        "qosClass": "Burstable",
        "startTime": ts(created),
    });
    if running {
        status["hostIP"] = json!(host_ip);
        status["hostIPs"] = json!([{"ip": host_ip}]);
        status["podIP"] = json!(pod_ip);
        status["podIPs"] = json!([{"ip": pod_ip}]);
        status["containerStatuses"] = json!(statuses);
        if init {
            status["initContainerStatuses"] = json!([{
                "name": "migrate", "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                    "startedAt": ts(created), "finishedAt": started,
                    "containerID": format!("containerd://{}", hex(seed(13, i), 64))}},
                "lastState": {}, "ready": true, "restartCount": 0, "image": image,
                "imageID": format!("registry.example.com/{app}@sha256:{}", hex(seed(9, i) ^ 1, 64)),
                "containerID": format!("containerd://{}", hex(seed(13, i), 64)), "started": false
            }]);
        }
    } else {
        conditions = vec![
            json!({"type": "PodScheduled", "status": "False", "lastProbeTime": null,
            "lastTransitionTime": ts(created), "reason": "Unschedulable",
            "message": format!("0/{n} nodes are available: 1 node(s) were unschedulable, 2 Insufficient memory, {m} node(s) didn't match Pod's node affinity/selector. preemption: 0/{n} nodes are available: 2 No preemption victims found for incoming pod, {m} Preemption is not helpful for scheduling.", n = s.nodes, m = s.nodes - 3)}),
        ];
    }
    status["conditions"] = json!(conditions);
    let mut spec = json!({
        "volumes": [
            {"name": "config", "configMap": {"name": format!("{app}-config"), "defaultMode": 420}},
            {"name": sa_volume, "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ], "defaultMode": 420}}
        ],
        "containers": containers,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": app,
        "serviceAccount": app,
        "securityContext": {"runAsUser": 10001, "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        ],
        "priority": 0,
        "enableServiceLinks": true,
        "preemptionPolicy": "PreemptLowerPriority"
    });
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    if init {
        spec["initContainers"] = json!([slim_container(
            "migrate", &image, "100m", "128Mi", &sa_volume
        )]);
    }
    let mut labels = json!({
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": format!("{app}-{ns}"),
        "app.kubernetes.io/part-of": ns.split('-').next().unwrap(),
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/managed-by": "Helm",
    });
    if let Owner::Deployment(j) = p.owner {
        labels["pod-template-hash"] = json!(template_hash(j));
    }
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "generateName": format!("{owner_name}-"),
            "namespace": ns,
            "uid": uid(seed(14, i)),
            "resourceVersion": rv(seed(14, i)),
            "creationTimestamp": ts(created),
            "labels": labels,
            "annotations": {
                "kubectl.kubernetes.io/restartedAt": ts(created + TimeDelta::minutes(1)),
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090"
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name, "uid": owner_uid,
                "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": spec,
        "status": status
    })
}

pub(crate) fn node_json(s: Size, n: usize) -> Value {
    let name = node_name(n);
    let ready = n != NOT_READY_NODE;
    let hb = ts(TimeDelta::seconds(30 + (n % 40) as i64));
    let since = ts(TimeDelta::days(12));
    let cond = |t: &str, on: bool, reason: &str, msg: &str| {
        json!({"type": t, "status": if on { "True" } else { "False" }, "lastHeartbeatTime": hb,
            "lastTransitionTime": since, "reason": reason, "message": msg})
    };
    let mut conditions = vec![
        cond(
            "MemoryPressure",
            n == PRESSURE_NODE,
            if n == PRESSURE_NODE {
                "KubeletHasInsufficientMemory"
            } else {
                "KubeletHasSufficientMemory"
            },
            "kubelet has sufficient memory available",
        ),
        cond(
            "DiskPressure",
            false,
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        cond(
            "PIDPressure",
            false,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        cond(
            "Ready",
            true,
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ];
    if !ready {
        conditions[3] = json!({"type": "Ready", "status": "Unknown", "lastHeartbeatTime": ts(TimeDelta::hours(2)),
            "lastTransitionTime": ts(TimeDelta::minutes(115)), "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status."});
    }
    let images: Vec<Value> = (0..25)
        .map(|k| {
            let app = deployment_name((n * 25 + k) % s.deployments());
            json!({"names": [
                format!("registry.example.com/{app}@sha256:{}", hex(seed(16, n * 25 + k), 64)),
                format!("registry.example.com/{app}:v1.{}.{}", k % 17, k % 5)
            ], "sizeBytes": 20_000_000 + mix(seed(17, n * 25 + k)) % 400_000_000})
        })
        .collect();
    let ip = format!("10.0.{}.{}", n / 200, n % 200 + 20);
    let mut spec = json!({
        "podCIDR": format!("10.1.{}.0/24", n),
        "podCIDRs": [format!("10.1.{}.0/24", n)],
        "providerID": format!("aws:///eu-west-1{}/i-0{}", ["a", "b", "c"][n % 3], hex(seed(18, n), 16)),
    });
    if n == CORDONED_NODE {
        spec["unschedulable"] = json!(true);
        spec["taints"] = json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": ts(TimeDelta::hours(5))}]);
    }
    json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": uid(seed(19, n)),
            "resourceVersion": rv(seed(19, n)),
            "creationTimestamp": ts(TimeDelta::days(40)),
            "labels": {
                "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/instance-type": "m6i.4xlarge",
                "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m6i.4xlarge",
                "topology.kubernetes.io/region": "eu-west-1",
                "topology.kubernetes.io/zone": format!("eu-west-1{}", ["a", "b", "c"][n % 3]),
                "eks.amazonaws.com/nodegroup": "general"
            },
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true"
            }
        },
        "spec": spec,
        "status": {
            "capacity": {"cpu": "16", "ephemeral-storage": "104845292Ki", "hugepages-1Gi": "0",
                "hugepages-2Mi": "0", "memory": "65023512Ki", "pods": "110"},
            "allocatable": {"cpu": "15890m", "ephemeral-storage": "95551679124", "hugepages-1Gi": "0",
                "hugepages-2Mi": "0", "memory": "63461464Ki", "pods": "110"},
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name}
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": hex(seed(20, n), 32), "systemUUID": uid(seed(21, n)),
                "bootID": uid(seed(22, n)), "kernelVersion": "6.1.112-124.190.amzn2023.x86_64",
                "osImage": "Amazon Linux 2023.6.20241111", "containerRuntimeVersion": "containerd://1.7.23",
                "kubeletVersion": "v1.33.1-eks-4b6d5b8", "kubeProxyVersion": "v1.33.1-eks-4b6d5b8",
                "operatingSystem": "linux", "architecture": "amd64"
            },
            "images": images
        }
    })
}

pub(crate) fn node_metrics_json(n: usize) -> Value {
    let mem_ki = if n == BUSY_NODE {
        63461464 * 95 / 100
    } else {
        20_000_000 + mix(seed(23, n)) % 20_000_000
    };
    json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": node_name(n), "creationTimestamp": ts(TimeDelta::zero()),
            "labels": {"kubernetes.io/hostname": node_name(n)}},
        "timestamp": ts(TimeDelta::seconds(12)),
        "window": "10.062s",
        "usage": {"cpu": format!("{}n", 1_000_000_000 + mix(seed(24, n)) % 8_000_000_000), "memory": format!("{mem_ki}Ki")}
    })
}

pub(crate) fn workload_json(
    kind: &str,
    ns: &str,
    name: &str,
    replicas: i32,
    available: i32,
    k: u64,
) -> Value {
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/instance": format!("{name}-{ns}")});
    let template = json!({
        "metadata": {"labels": labels, "annotations": {"kubectl.kubernetes.io/restartedAt": ts(TimeDelta::days(3))}},
        "spec": {
            "containers": [container("app", &format!("registry.example.com/{name}:v1.4.2"), "250m", "256Mi", "kube-api-access")],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": name, "securityContext": {"runAsUser": 10001, "fsGroup": 10001},
            "schedulerName": "default-scheduler"
        }
    });
    let meta = json!({
        "name": name, "namespace": ns, "uid": uid(k), "resourceVersion": rv(k), "generation": 7,
        "creationTimestamp": ts(TimeDelta::days(30)), "labels": labels,
        "annotations": {"meta.helm.sh/release-name": name, "meta.helm.sh/release-namespace": ns}
    });
    let t = ts(TimeDelta::hours(6));
    match kind {
        "Deployment" => json!({
            "kind": "Deployment", "apiVersion": "apps/v1", "metadata": meta,
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
            "status": {"observedGeneration": 7, "replicas": replicas, "updatedReplicas": replicas,
                "readyReplicas": available, "availableReplicas": available,
                "unavailableReplicas": replicas - available,
                "conditions": [
                    {"type": "Available", "status": if available == replicas { "True" } else { "False" },
                     "lastUpdateTime": t, "lastTransitionTime": t, "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability."},
                    {"type": "Progressing", "status": "True", "lastUpdateTime": t, "lastTransitionTime": t,
                     "reason": "NewReplicaSetAvailable",
                     "message": format!("ReplicaSet \"{name}\" has successfully progressed.")}
                ]}
        }),
        "StatefulSet" => json!({
            "kind": "StatefulSet", "apiVersion": "apps/v1", "metadata": meta,
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template,
                "serviceName": name, "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "volumeClaimTemplates": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "storageClassName": "gp3", "resources": {"requests": {"storage": "50Gi"}}, "volumeMode": "Filesystem"}}]},
            "status": {"observedGeneration": 7, "replicas": replicas, "readyReplicas": available,
                "currentReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": available,
                "currentRevision": format!("{name}-{}", hex(k, 10)), "updateRevision": format!("{name}-{}", hex(k, 10)),
                "collisionCount": 0}
        }),
        _ => json!({
            "kind": "DaemonSet", "apiVersion": "apps/v1", "metadata": meta,
            "spec": {"selector": {"matchLabels": labels}, "template": template,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                "revisionHistoryLimit": 10},
            "status": {"currentNumberScheduled": replicas, "numberMisscheduled": 0,
                "desiredNumberScheduled": replicas, "numberReady": available, "observedGeneration": 7,
                "updatedNumberScheduled": replicas, "numberAvailable": available}
        }),
    }
}

pub(crate) fn pvc_json(s: Size, j: usize) -> Value {
    let sts = s.statefulsets() * 3;
    let (ns, name) = if j < sts {
        let (k, o) = (j / 3, j % 3);
        (
            statefulset_ns(s, k),
            format!("data-{}-{o}", statefulset_name(k)),
        )
    } else {
        let d = (j - sts) * 10;
        (deployment_ns(s, d), format!("{}-cache", deployment_name(d)))
    };
    let pending = j % 40 == 17;
    let mut status = json!({"phase": if pending { "Pending" } else { "Bound" }});
    let mut spec = json!({"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3",
        "resources": {"requests": {"storage": "50Gi"}}, "volumeMode": "Filesystem"});
    if !pending {
        spec["volumeName"] = json!(format!("pvc-{}", uid(seed(25, j))));
        status["accessModes"] = json!(["ReadWriteOnce"]);
        status["capacity"] = json!({"storage": "50Gi"});
    }
    json!({
        "kind": "PersistentVolumeClaim", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "uid": uid(seed(26, j)), "resourceVersion": rv(seed(26, j)),
            "creationTimestamp": ts(if pending { TimeDelta::hours(1) } else { TimeDelta::days(30) }),
            "annotations": {"pv.kubernetes.io/bind-completed": "yes",
                "volume.beta.kubernetes.io/storage-provisioner": "ebs.csi.aws.com",
                "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com"},
            "finalizers": ["kubernetes.io/pvc-protection"]},
        "spec": spec,
        "status": status
    })
}

pub(crate) fn event_json(s: Size, i: usize) -> Value {
    let g = i % s.event_groups();
    let (reason, msg, kind, ns, obj, node) = event_group(s, g);
    let ago = if event_in_window(g) {
        TimeDelta::minutes(1 + (mix(seed(27, i)) % (11 * 60)) as i64)
    } else {
        TimeDelta::hours(13 + (i % 24) as i64)
    };
    let first = ago + TimeDelta::minutes(30);
    let node = node_name(node);
    let mut involved = json!({"kind": kind, "name": obj, "uid": uid(seed(28, g)), "apiVersion": "v1",
        "resourceVersion": rv(seed(28, g))});
    if kind == "Pod" {
        involved["namespace"] = json!(ns);
        involved["fieldPath"] = json!("spec.containers{app}");
    }
    json!({
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": format!("{obj}.{}", hex(seed(29, i), 16)), "namespace": ns,
            "uid": uid(seed(29, i)), "resourceVersion": rv(seed(29, i)), "creationTimestamp": ts(first)},
        "involvedObject": involved,
        "reason": reason,
        "message": msg.replace("{obj}", &obj),
        "source": {"component": "kubelet", "host": node},
        "firstTimestamp": ts(first),
        "lastTimestamp": ts(ago),
        "count": 1 + i % 5,
        "type": "Warning",
        "eventTime": null,
        "reportingComponent": "kubelet",
        "reportingInstance": node
    })
}

pub(crate) fn tls_secret_json(s: Size, j: usize) -> Value {
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    json!({
        "kind": "Secret", "apiVersion": "v1", "type": "kubernetes.io/tls",
        "metadata": {"name": format!("{}-tls", deployment_name(j)), "namespace": namespace(s, j),
            "uid": uid(seed(30, j)), "resourceVersion": rv(seed(30, j)), "creationTimestamp": ts(TimeDelta::days(85))},
        "data": {"tls.crt": b64(SITE_CRT), "tls.key": b64("-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n")}
    })
}
