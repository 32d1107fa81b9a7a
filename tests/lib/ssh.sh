# ssh.sh: a real sshd inside test nodes, so that Ansible reaches them as it reaches any machine
# (needs cluster.sh sourced first).
#
#   ssh_setup                   a key pair for the test in $CLUSTER_DIR/ssh (sets SSH_KEY)
#   node_sshd NODE              sshd as a unit of NODE's systemd, listening on the node's address,
#                               root allowed with the test's key only
#   ssh_inventory FILE VARS...  an Ansible inventory of every node (group "nodes") reached over
#                               SSH; extra "key=value" host variables are added to each host

ssh_setup() {
    SSH_DIR=$CLUSTER_DIR/ssh
    SSH_KEY=$SSH_DIR/id_ed25519
    mkdir -p "$SSH_DIR" && chmod 0700 "$SSH_DIR"
    [ -f "$SSH_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C baton-test -f "$SSH_KEY" || return 1
    [ -f "$SSH_DIR/host_ed25519" ] ||
        ssh-keygen -q -t ed25519 -N '' -C baton-test-host -f "$SSH_DIR/host_ed25519"
}

node_sshd() {
    local node=$1 conf unit
    conf=$(mktemp)
    unit=$(mktemp)
    cat >"$conf" <<CONF
ListenAddress $(node_ip "$node")
HostKey /etc/baton-test-ssh/host_ed25519
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile /etc/baton-test-ssh/authorized_keys
StrictModes no
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
    cat >"$unit" <<UNIT
[Unit]
Description=sshd for baton's tests
[Service]
ExecStart=/usr/sbin/sshd -D -e -f /etc/baton-test-ssh/sshd_config
RuntimeDirectory=sshd
UNIT
    node_push "$node" "$conf" /etc/baton-test-ssh/sshd_config 0600 &&
        node_push "$node" "$SSH_DIR/host_ed25519" /etc/baton-test-ssh/host_ed25519 0600 &&
        node_push "$node" "$SSH_KEY.pub" /etc/baton-test-ssh/authorized_keys 0600 &&
        node_push "$node" "$unit" /etc/systemd/system/baton-test-sshd.service &&
        node_exec "$node" systemctl daemon-reload &&
        node_exec "$node" systemctl start baton-test-sshd
    local rc=$?
    rm -f "$conf" "$unit"
    [ $rc = 0 ] || return $rc
    local deadline=$((SECONDS + 10))
    until tcp_open "$(node_ip "$node")" 22; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

ssh_inventory() { # FILE [key=value ...]
    local file=$1 n
    shift
    {
        echo "[nodes]"
        for n in $CLUSTER_NODES; do
            printf '%s ansible_host=%s %s\n' "$n" "$(node_ip "$n")" "$*"
        done
        echo
        echo "[nodes:vars]"
        echo "ansible_user=root"
        echo "ansible_ssh_private_key_file=$SSH_KEY"
        echo "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'"
        echo "ansible_python_interpreter=/usr/bin/python3"
        echo
        echo "[controller]"
        echo "localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3"
    } >"$file"
}
