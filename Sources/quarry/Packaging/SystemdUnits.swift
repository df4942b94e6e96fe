/// The systemd units the Debian package installs. The server runs as its own unprivileged user with
/// the file system read-only around it, reading its root-only server.yaml through a systemd
/// credential; the agent runs as root (forensics reads everything, response moves files and sets
/// firewall rules) but cannot gain privileges it lacks. Both are Type=notify with a watchdog fed by
/// `SystemdNotifier`, and restart on failure.
enum SystemdUnits {
    static let server = """
        [Unit]
        Description=Quarry fleet server (agents, analyst API, hunts, events)
        Documentation=man:quarry(1)
        After=network-online.target postgresql.service
        Wants=network-online.target
        ConditionPathExists=/etc/quarry/server.yaml

        [Service]
        Type=notify
        User=quarry
        Group=quarry
        # server.yaml stays root-only (0600); systemd hands the service a private copy.
        LoadCredential=server.yaml:/etc/quarry/server.yaml
        ExecStart=/usr/bin/quarry server --config ${CREDENTIALS_DIRECTORY}/server.yaml
        StateDirectory=quarry
        StateDirectoryMode=0700
        WorkingDirectory=/var/lib/quarry
        UMask=0077
        Restart=on-failure
        RestartSec=5
        WatchdogSec=30
        TimeoutStopSec=30
        LimitNOFILE=65536
        NoNewPrivileges=yes
        ProtectSystem=strict
        ProtectHome=yes
        PrivateTmp=yes
        PrivateDevices=yes
        ProtectKernelTunables=yes
        ProtectKernelModules=yes
        ProtectKernelLogs=yes
        ProtectControlGroups=yes
        ProtectClock=yes
        ProtectHostname=yes
        RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
        RestrictNamespaces=yes
        RestrictRealtime=yes
        RestrictSUIDSGID=yes
        LockPersonality=yes
        SystemCallArchitectures=native
        CapabilityBoundingSet=CAP_NET_BIND_SERVICE
        AmbientCapabilities=CAP_NET_BIND_SERVICE

        [Install]
        WantedBy=multi-user.target

        """

    static let client = """
        [Unit]
        Description=Quarry endpoint agent (collections, event monitoring, response)
        Documentation=man:quarry(1)
        After=network-online.target
        Wants=network-online.target
        ConditionPathExists=/etc/quarry/client.yaml

        [Service]
        Type=notify
        ExecStart=/usr/bin/quarry client --config /etc/quarry/client.yaml --state-dir /var/lib/quarry-client
        StateDirectory=quarry-client
        StateDirectoryMode=0700
        UMask=0077
        Restart=always
        RestartSec=5
        WatchdogSec=60
        TimeoutStopSec=30
        LimitNOFILE=65536
        NoNewPrivileges=yes
        ProtectClock=yes
        ProtectHostname=yes
        RestrictRealtime=yes
        LockPersonality=yes
        SystemCallArchitectures=native

        [Install]
        WantedBy=multi-user.target

        """
}
