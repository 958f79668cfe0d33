"""Running the shards of one fleet on an existing orchestrator: systemd or Kubernetes.

Shards are independent processes whose meters depend only on their index
(:mod:`tools.fleet.addressing`), so no home-made supervisor is needed beyond one
machine: a systemd template unit whose instance name is the shard index (the
machine's ``/etc/bijli/fleet.env`` gives the fleet's size and shard count, so
``systemctl start bijli-fleet@{0..3}`` runs shards 0..3 of 4), and a Kubernetes
StatefulSet whose pod ordinal (the ``apps.kubernetes.io/pod-index`` label, given to
the container through the downward API) is the shard index and whose volume claim
template gives each shard its own database. In a pod the meters listen on the pod's
address (``--tcp 0.0.0.0:4059``: meter I on port 4059 + I // N), since the pod's
loopback is not reachable from a head-end elsewhere. ``bijli fleet --print-unit`` and
``--print-statefulset`` write them.
"""

from __future__ import annotations

SYSTEMD_UNIT = """\
# bijli-fleet@.service: shard %i of a bijli fleet (instance = shard index).
# /etc/bijli/fleet.env sets BIJLI_FLEET_COUNT (meters in the whole fleet) and
# BIJLI_FLEET_SHARDS (N); start shards 0..N-1: systemctl start bijli-fleet@{0..3}
[Unit]
Description=bijli fleet, shard %i
After=network.target

[Service]
Type=simple
User=bijli
EnvironmentFile=/etc/bijli/fleet.env
StateDirectory=bijli-fleet
ExecStart={bijli} fleet --count ${BIJLI_FLEET_COUNT} --shard %i/${BIJLI_FLEET_SHARDS} --state /var/lib/bijli-fleet --clock real --manifest /var/lib/bijli-fleet/manifest-%i.json
KillSignal=SIGTERM
TimeoutStopSec=120
Restart=on-failure
RestartSec=2
LimitNOFILE=1048576
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""

STATEFULSET = """\
# A bijli fleet on Kubernetes: one pod per shard, the pod ordinal is the shard index.
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: bijli-fleet
spec:
  serviceName: bijli-fleet
  replicas: {shards}
  podManagementPolicy: Parallel
  selector:
    matchLabels:
      app: bijli-fleet
  template:
    metadata:
      labels:
        app: bijli-fleet
    spec:
      terminationGracePeriodSeconds: 120
      containers:
        - name: fleet
          image: {image}
          env:
            - name: SHARD
              valueFrom:
                fieldRef:
                  fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
          args: ["fleet", "--count", "{count}", "--shard", "$(SHARD)/{shards}", "--tcp", "0.0.0.0:4059",
                 "--state", "/state", "--clock", "real", "--manifest", "/state/manifest.json"]
          volumeMounts:
            - name: state
              mountPath: /state
  volumeClaimTemplates:
    - metadata:
        name: state
      spec:
        accessModes: ["ReadWriteOnce"]
        resources:
          requests:
            storage: {storage}
"""


def systemd_unit(bijli: str = "/opt/bijli/venv/bin/bijli") -> str:
    return SYSTEMD_UNIT.replace("{bijli}", bijli)


def statefulset(count: int, shards: int, image: str = "bijli:latest") -> str:
    """The StatefulSet for a fleet of ``count`` meters in ``shards`` pods; each pod's volume is
    sized for its share at the disk target (5 GB a month per 250,000 meters), doubled."""
    per_shard_gib = max(1, -(-2 * 5 * count // (250_000 * shards)))
    return (STATEFULSET.replace("{shards}", str(shards)).replace("{count}", str(count))
            .replace("{image}", image).replace("{storage}", f"{per_shard_gib}Gi"))
