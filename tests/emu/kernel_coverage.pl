#!/usr/bin/perl
# Which kernels of kernels/ ran on the emulated device (tests/emu), checked, not claimed.
#   kernel_coverage.pl REPORT SOURCE_DIR [--ptx-only=a.cu,b.cu] [--never-launched=k1,k2] [--out=FILE]
# REPORT: "name count" lines appended by each emulated test through DLK_EMU_REPORT. Every
# __global__ function of kernels/**/*.cu is listed with its launch count; a kernel needs a
# real GPU when its file is inline PTX through and through (--ptx-only) or it sits inside an
# "#ifndef DLK_CUDA_EMU" / "#if !defined(DLK_CUDA_EMU)" region. Fails when a kernel the
# emulated build has was never launched (--never-launched names kernels that are not meant
# to be: dlk_probe_kernel is only queried for its attributes).
use strict;
use warnings;
use File::Find;

my ($report, $src, @opt) = @ARGV;
die "usage: $0 REPORT SOURCE_DIR [--ptx-only=..] [--never-launched=..]\n" unless $report && $src;
my (%ptx_file, %never, $outfile);
for (@opt) {
  if (/^--out=(.*)$/) { $outfile = $1; next; }
  if (/^--ptx-only=(.*)$/) { $ptx_file{$_} = 1 for grep { length } split /,/, $1; }
  elsif (/^--never-launched=(.*)$/) { $never{$_} = 1 for grep { length } split /,/, $1; }
}

my %count;
if (open my $fh, '<', $report) {
  while (<$fh>) { $count{$1} += $2 if /^(\S+)\s+(\d+)/; }
  close $fh;
}

my @files;
find(sub { push @files, $File::Find::name if /\.cu$/ }, "$src/kernels");
my (@rows, %seen);
for my $path (sort @files) {
  (my $rel = $path) =~ s{^\Q$src\E/}{};
  open my $fh, '<', $path or die "$path: $!";
  my @lines = <$fh>;
  close $fh;
  # Mark lines compiled out for the emulator: a stack of #if states.
  my (@stack, $text);
  for my $l (@lines) {
    # 1: this branch is compiled out for the emulator; 2: only the emulator compiles it.
    my $out = grep { $_ == 1 } @stack;
    if ($l =~ /^\s*#\s*if(n?def|)\b(.*)/) {
      my ($kind, $rest) = ($1, $2);
      my $not = ($kind eq 'ndef' && $rest =~ /\bDLK_CUDA_EMU\b/) || ($kind eq '' && $rest =~ /!\s*defined\s*\(?\s*DLK_CUDA_EMU/);
      my $is = ($kind eq 'def' && $rest =~ /\bDLK_CUDA_EMU\b/) || ($kind eq '' && $rest =~ /(?<!!)\bdefined\s*\(?\s*DLK_CUDA_EMU/);
      push @stack, $not ? 1 : ($is ? 2 : 0);
    } elsif ($l =~ /^\s*#\s*else\b/ && @stack) {
      $stack[-1] = $stack[-1] == 1 ? 2 : ($stack[-1] == 2 ? 1 : 0);
    } elsif ($l =~ /^\s*#\s*endif\b/ && @stack) {
      pop @stack;
    }
    $text .= ($out ? "\x01" : "") . $l;
  }
  $text =~ s{//[^\n]*}{}g;
  $text =~ s{/\*.*?\*/}{}gs;
  while ($text =~ /(\x01?)[^\n]*?__global__\b[^;{]*?\bvoid\s+(?:__launch_bounds__\s*(\((?:[^()]++|(?-1))*\))\s*)?(\w+)\s*\(/gs) {
    my ($out, $name) = ($1, $3);
    next if $seen{$name}++;
    my $status = ($ptx_file{$rel} || $out) ? 'needs a real GPU (inline PTX)'
               : ($count{$name} ? 'ran' : ($never{$name} ? 'not launched (by design)' : 'NEVER RAN'));
    push @rows, [$rel, $name, $count{$name} // 0, $status];
  }
}

my ($ran, $ptx, $missing) = (0, 0, 0);
my $table = sprintf "%-24s %-30s %9s  %s\n", 'file', 'kernel', 'launches', 'status';
for my $r (@rows) {
  $table .= sprintf "%-24s %-30s %9d  %s\n", @$r;
  $ran++ if $r->[3] eq 'ran';
  $ptx++ if $r->[3] =~ /real GPU/;
  $missing++ if $r->[3] eq 'NEVER RAN';
}
$table .= sprintf "%d kernels: %d ran on the emulated device, %d need a real GPU (inline PTX), %d never ran\n",
  scalar @rows, $ran, $ptx, $missing;
print $table;
if ($outfile) {
  open my $o, '>', $outfile or die "$outfile: $!";
  print $o $table;
  close $o;
}
exit($missing ? 1 : 0);
