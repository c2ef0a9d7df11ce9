package mount

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
)

// sdNotify sends state to the service manager, as sd_notify(3) does: one
// datagram to the unix socket named by $NOTIFY_SOCKET (a leading "@" names an
// abstract socket, which Go's net package understands). With NOTIFY_SOCKET
// unset, as outside a Type=notify systemd unit, it does nothing.
func sdNotify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// notifyServing tells systemd that the mount serves (READY=1), with a status
// line for systemctl status. A failure is logged, never fatal: the mount
// works whether or not anyone listens.
func notifyServing(log *slog.Logger, status string) {
	if err := sdNotify("READY=1\nSTATUS=" + status); err != nil {
		log.Warn("could not notify the service manager", "err", err)
	}
}

// notifyStopping tells systemd that the daemon is shutting down (STOPPING=1).
// Started by the fstab mount helper, the daemon finds nobody listening any
// more: the helper exits once the mount serves. That is no warning.
func notifyStopping(log *slog.Logger) {
	err := sdNotify("STOPPING=1\nSTATUS=unmounting")
	switch {
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT):
		log.Debug("nobody listens on NOTIFY_SOCKET any more", "err", err)
	case err != nil:
		log.Warn("could not notify the service manager", "err", err)
	}
}
