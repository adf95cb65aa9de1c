#!/usr/bin/perl
# An independent SMPP 3.4 carrier (SMSC) for trunx's end-to-end tests, built on Debian's
# libnet-smpp-perl (Net::SMPP) in its server role. One process, one select loop, any number of
# connections (one after another or at once), any number of outstanding submits.
#
#   bind_transceiver  -> checks system_id / password (ESME_RINVSYSID 0x0F / ESME_RINVPASWD 0x0E)
#   submit_sm         -> submit_sm_resp with a fresh message id, then (registered_delivery set)
#                        a deliver_sm receipt after --receipt-delay-ms: esm_class 0x04,
#                        "id:... sub:001 dlvrd:001 submit date:... done date:... stat:DELIVRD
#                        err:000 text:...", TLVs receipted_message_id and message_state.
#                        A receipt whose connection is gone waits for the next bind.
#   enquire_link      -> enquire_link_resp;  unbind -> unbind_resp and close
#   other requests    -> generic_nack ESME_RINVCMDID
#
# Flags:
#   --port N              listen port on 127.0.0.1 (0: any free port; default 0)
#   --system-id S         expected system_id (default "trunx")
#   --password P          expected password (default "secret")
#   --throttle N          answer the first N submits with ESME_RTHROTTLED (0x58)
#   --drop-after N        on the N-th submit, close the TCP connection without answering it
#                         (once per process)
#   --mo FROM:TEXT        after the first successful bind send a mobile-originated deliver_sm
#                         from FROM (e.g. a STOP); repeatable
#   --fail-number NUMBER  receipts for this destination say stat:UNDELIV err:001 (repeatable;
#                         a leading + is ignored when comparing)
#   --silent-number NUMBER  never send a receipt for this destination (repeatable)
#   --fail-source NUMBER  receipts for messages from this sender say stat:UNDELIV (repeatable:
#                         a DID the carrier filters)
#   --receipt-delay-ms N  delay before a receipt (default 200)
#   --log FILE            one JSON line per PDU received: command, seq, status, destination,
#                         source, data_coding, esm_class, registered_delivery, short_message
#                         (hex), system_id (binds)
#
# Prints one JSON line on stdout when listening: {"event":"listening","port":N}.

use strict;
use warnings;

use Getopt::Long;
use IO::Select;
use JSON::PP;
use Net::SMPP;
use POSIX qw(strftime);
use Time::HiRes qw(time);

my %opt = (
    port             => 0,
    'system-id'      => 'trunx',
    password         => 'secret',
    throttle         => 0,
    'drop-after'     => 0,
    'receipt-delay-ms' => 200,
);
my (@mo, @fail, @silent, @fail_source);
GetOptions(
    'port=i'             => \$opt{port},
    'system-id=s'        => \$opt{'system-id'},
    'password=s'         => \$opt{password},
    'throttle=i'         => \$opt{throttle},
    'drop-after=i'       => \$opt{'drop-after'},
    'mo=s'               => \@mo,
    'fail-number=s'      => \@fail,
    'silent-number=s'    => \@silent,
    'fail-source=s'      => \@fail_source,
    'receipt-delay-ms=i' => \$opt{'receipt-delay-ms'},
    'log=s'              => \$opt{log},
) or die "usage: see the comment at the top of $0\n";

my %fail = map { (my $n = $_) =~ s/^\+//; ($n => 1) } @fail;
my %silent = map { (my $n = $_) =~ s/^\+//; ($n => 1) } @silent;
my %fail_source = map { (my $n = $_) =~ s/^\+//; ($n => 1) } @fail_source;

use constant {
    ESME_ROK        => 0x00000000,
    ESME_RINVCMDID  => 0x00000003,
    ESME_RINVBNDSTS => 0x00000004,
    ESME_RINVPASWD  => 0x0000000E,
    ESME_RINVSYSID  => 0x0000000F,
    ESME_RTHROTTLED => 0x00000058,
    MSG_DELIVERED     => 2,
    MSG_UNDELIVERABLE => 5,
};

my %command_name = (
    0x80000000 => 'generic_nack',
    0x00000001 => 'bind_receiver',
    0x00000002 => 'bind_transmitter',
    0x00000004 => 'submit_sm',
    0x00000005 => 'deliver_sm',
    0x80000005 => 'deliver_sm_resp',
    0x00000006 => 'unbind',
    0x80000006 => 'unbind_resp',
    0x00000009 => 'bind_transceiver',
    0x00000015 => 'enquire_link',
    0x80000015 => 'enquire_link_resp',
);

my $log;
if (defined $opt{log}) {
    open($log, '>>', $opt{log}) or die "cannot open $opt{log}: $!\n";
    $log->autoflush(1);
}
my $json = JSON::PP->new->canonical(1);

my $listen = Net::SMPP->new_listen('127.0.0.1', port => $opt{port}, smpp_version => 0x34)
    or die "cannot listen on 127.0.0.1:$opt{port}: $!\n";
$SIG{TERM} = $SIG{INT} = sub { exit 0 };
$SIG{PIPE} = 'IGNORE';
$| = 1;
print $json->encode({ event => 'listening', port => $listen->sockport }), "\n";

my $select = IO::Select->new($listen);
my %bound;          # connection (stringified) -> connection, bound ones
my $latest;         # the most recently bound connection: receipts and MOs go there
my @pending;        # receipts and MOs waiting: { due => t, pdu => {...} }
my $message_seq = 0;
my $submits = 0;
my $throttle_left = $opt{throttle};
my $dropped = 0;
my $mo_sent = 0;

sub log_pdu {
    my ($pdu) = @_;
    return unless $log;
    my $sm = $pdu->{short_message};
    print $log $json->encode({
        command => $command_name{ $pdu->{cmd} } // sprintf('0x%08x', $pdu->{cmd}),
        seq     => $pdu->{seq},
        status  => $pdu->{status},
        (defined $pdu->{destination_addr} ? (destination => $pdu->{destination_addr}) : ()),
        (defined $pdu->{source_addr}      ? (source      => $pdu->{source_addr})      : ()),
        (defined $pdu->{data_coding}      ? (data_coding => $pdu->{data_coding})      : ()),
        (defined $pdu->{esm_class}        ? (esm_class   => $pdu->{esm_class})        : ()),
        (defined $pdu->{registered_delivery}
            ? (registered_delivery => $pdu->{registered_delivery}) : ()),
        (defined $sm ? (short_message => unpack('H*', $sm)) : ()),
        (defined $pdu->{system_id} ? (system_id => $pdu->{system_id}) : ()),
    }), "\n";
}

sub close_conn {
    my ($conn) = @_;
    delete $bound{"$conn"};
    if ($latest && $latest == $conn) {
        ($latest) = values %bound;
    }
    $select->remove($conn);
    $conn->close;
}


sub receipt_for {
    my ($submit, $message_id, $now) = @_;
    my $dest = $submit->{destination_addr} // '';
    (my $bare = $dest) =~ s/^\+//;
    (my $from = $submit->{source_addr} // '') =~ s/^\+//;
    my $failed = $fail{$bare} || $fail_source{$from};
    my $stamp = strftime('%y%m%d%H%M', gmtime($now));
    my $text = substr($submit->{short_message} // '', 0, 20);
    $text =~ s/[^\x20-\x7e]/./g;
    my $body = sprintf('id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%s text:%s',
        $message_id, $failed ? '000' : '001', $stamp, $stamp,
        $failed ? 'UNDELIV' : 'DELIVRD', $failed ? '001' : '000', $text);
    return {
        source_addr_ton      => $submit->{dest_addr_ton} // 1,
        source_addr_npi      => $submit->{dest_addr_npi} // 1,
        source_addr          => $dest,
        dest_addr_ton        => $submit->{source_addr_ton} // 1,
        dest_addr_npi        => $submit->{source_addr_npi} // 1,
        destination_addr     => $submit->{source_addr} // '',
        esm_class            => 0x04,
        data_coding          => 0x00,
        short_message        => $body,
        receipted_message_id => "$message_id\0",
        message_state        => chr($failed ? MSG_UNDELIVERABLE : MSG_DELIVERED),
    };
}

sub handle {
    my ($conn, $pdu) = @_;
    log_pdu($pdu);
    my $cmd = $pdu->{cmd};
    my $seq = $pdu->{seq};
    if ($cmd == 0x00000009) {
        my $status = ESME_ROK;
        if (($pdu->{system_id} // '') ne $opt{'system-id'}) {
            $status = ESME_RINVSYSID;
        } elsif (($pdu->{password} // '') ne $opt{password}) {
            $status = ESME_RINVPASWD;
        }
        $conn->bind_transceiver_resp(system_id => 'carrier', seq => $seq, status => $status);
        if ($status == ESME_ROK) {
            $bound{"$conn"} = $conn;
            $latest = $conn;
            if (!$mo_sent) {
                $mo_sent = 1;
                for my $m (@mo) {
                    my ($from, $text) = split /:/, $m, 2;
                    push @pending, {
                        due => time + 0.1,
                        pdu => {
                            source_addr_ton => 1, source_addr_npi => 1, source_addr => $from,
                            dest_addr_ton => 1, dest_addr_npi => 1, destination_addr => '',
                            esm_class => 0x00, data_coding => 0x00,
                            short_message => $text // '',
                        },
                    };
                }
            }
        }
    } elsif ($cmd == 0x00000004) {
        if (!$bound{"$conn"}) {
            $conn->submit_sm_resp(message_id => '', seq => $seq, status => ESME_RINVBNDSTS);
            return;
        }
        $submits++;
        if ($opt{'drop-after'} && !$dropped && $submits >= $opt{'drop-after'}) {
            $dropped = 1;
            close_conn($conn);
            return;
        }
        if ($throttle_left > 0) {
            $throttle_left--;
            $conn->submit_sm_resp(message_id => '', seq => $seq, status => ESME_RTHROTTLED);
            return;
        }
        my $message_id = sprintf('%08X', ++$message_seq);
        $conn->submit_sm_resp(message_id => $message_id, seq => $seq);
        (my $to = $pdu->{destination_addr} // '') =~ s/^\+//;
        if ((($pdu->{registered_delivery} // 0) & 0x03) && !$silent{$to}) {
            push @pending, {
                due => time + $opt{'receipt-delay-ms'} / 1000,
                pdu => receipt_for($pdu, $message_id, time),
            };
        }
    } elsif ($cmd == 0x00000015) {
        $conn->enquire_link_resp(seq => $seq);
    } elsif ($cmd == 0x00000006) {
        $conn->unbind_resp(seq => $seq);
        close_conn($conn);
    } elsif ($cmd & 0x80000000) {
        # A response (deliver_sm_resp, enquire_link_resp, generic_nack): logged only.
    } else {
        $conn->generic_nack(seq => $seq, status => ESME_RINVCMDID);
    }
}

while (1) {
    my $now = time;
    my $wait = 0.5;
    for my $p (@pending) {
        my $left = $p->{due} - $now;
        $wait = $left if $left < $wait;
    }
    $wait = 0 if $wait < 0;
    for my $fh ($select->can_read($wait)) {
        if ($fh == $listen) {
            my $conn = $listen->accept or next;
            $select->add($conn);
            next;
        }
        my $pdu = $fh->read_pdu;
        if (!$pdu) {
            close_conn($fh);
            next;
        }
        handle($fh, $pdu);
    }
    $now = time;
    my @later;
    for my $p (@pending) {
        my $conn = $latest;
        if ($p->{due} <= $now && $conn) {
            $conn->deliver_sm(%{ $p->{pdu} }, async => 1);
        } else {
            push @later, $p;
        }
    }
    @pending = @later;
}
