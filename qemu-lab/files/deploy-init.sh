#!/bin/sh
# kalab deploy kernel: init of the initramfs (PID 1).
. /etc/kalab-common.sh
kalab_mounts
echo "kalab-deploy-kernel init" >/dev/ttyS0
hostname kalab-deploy
kalab_network
kalab_sshd
# The deployer writes each broadcast's token to /run/kaagent.token over SSH; the agent refuses peers without it.
kaagent --listen 0.0.0.0:25301 --token-file /run/kaagent.token >/run/kaagent.log 2>&1 &
# Kadeploy's "deploy environment is up" port: accept and close.
(while :; do nc -l -p 25300 </dev/null >/dev/null 2>&1; done) &
echo "kalab-deploy-kernel ready $(hostname) $(kalab_ip)" >/dev/ttyS0
kalab_console_shell
