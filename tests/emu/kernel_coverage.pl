#!/usr/bin/perl
# Which kernels of kernels/ ran on the emulated device (tests/emu), checked, not claimed.
#   kernel_coverage.pl REPORT SOURCE_DIR [--ptx-only=a.cu,b.cu] [--never-launched=k1,k2] [--out=FILE]
# REPORT: "name count" lines appended by each emulated test through DLK_EMU_REPORT. Every
# __global__ function of kernels/**/*.cu and *.cuh is listed with its launch count, grouped by family
# (kernels/<family>/); a kernel needs a real GPU when its file is inline PTX through and
# through (--ptx-only), or its declaration or its whole body sits inside an
# "#ifndef DLK_CUDA_EMU" / "#if !defined(DLK_CUDA_EMU)" region. Fails when a kernel the
# emulated build has was never launched (--never-launched names kernels that are not meant
# to be: dlk_probe_kernel is only queried for its attributes), and when a launch was
# recorded under a name that is no kernel of kernels/ or of --extra files (a launch through
# a function-pointer variable: DLK_LAUNCH must name the kernel).
use strict;
use warnings;
use File::Find;

my ($report, $src, @opt) = @ARGV;
die "usage: $0 REPORT SOURCE_DIR [--ptx-only=..] [--never-launched=..]\n" unless $report && $src;
my (%ptx_file, %never, $outfile, @extra);
for (@opt) {
  if (/^--out=(.*)$/) { $outfile = $1; next; }
  if (/^--extra=(.*)$/) { push @extra, grep { length } split /,/, $1; next; }
  if (/^--ptx-only=(.*)$/) { $ptx_file{$_} = 1 for grep { length } split /,/, $1; }
  elsif (/^--never-launched=(.*)$/) { $never{$_} = 1 for grep { length } split /,/, $1; }
}

my %count;
if (open my $fh, '<', $report) {
  while (<$fh>) { $count{$1} += $2 if /^(\S+)\s+(\d+)/; }
  close $fh;
}

my @files;
find(sub { push @files, $File::Find::name if /\.cuh?$/ }, "$src/kernels");
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
    # The body compiled out: the first line after the opening brace is marked.
    if (!$out && substr($text, pos($text)) =~ /\A[^{;]*\{[^\n]*\n(?:[ \t]*#[^\n]*\n)*(\x01?)/) { $out = $1; }
    next if $seen{$name}++;
    my $status = ($ptx_file{$rel} || $out) ? 'needs a real GPU (inline PTX)'
               : ($count{$name} ? 'ran' : ($never{$name} ? 'not launched (by design)' : 'NEVER RAN'));
    push @rows, [$rel, $name, $count{$name} // 0, $status];
  }
}

# Launch names that are no kernel here: a launch through a variable, or a kernel renamed.
my %known = map { $_->[1] => 1 } @rows;
for my $f (@extra) {
  open my $fh, '<', $f or die "$f: $!";
  local $/;
  my $t = <$fh>;
  close $fh;
  $known{$1} = 1 while $t =~ /__global__\b[^;{]*?\bvoid\s+(\w+)\s*\(/g;
}
my @unknown = grep { !$known{$_} } sort keys %count;

my ($ran, $ptx, $missing) = (0, 0, 0);
my (%fam, @fams);
my $table = sprintf "%-32s %-34s %9s  %s\n", 'file', 'kernel', 'launches', 'status';
for my $r (@rows) {
  $table .= sprintf "%-32s %-34s %9d  %s\n", @$r;
  my ($f) = $r->[0] =~ m{^kernels/([^/]+)/};
  $f //= 'common';
  push @fams, $f unless $fam{$f};
  $fam{$f} //= [0, 0, 0, 0];
  $fam{$f}[0]++;
  if ($r->[3] eq 'ran') { $ran++; $fam{$f}[1]++; }
  elsif ($r->[3] =~ /real GPU/) { $ptx++; $fam{$f}[2]++; }
  elsif ($r->[3] eq 'NEVER RAN') { $missing++; $fam{$f}[3]++; }
}
$table .= "\nper family: kernels, ran on the emulated device (and passed their tests), need a real GPU, never ran\n";
$table .= sprintf "  %-12s %3d kernels: %3d ran, %2d need a real GPU (inline PTX), %d never ran\n", $_, @{$fam{$_}} for @fams;
$table .= sprintf "%d kernels: %d ran on the emulated device, %d need a real GPU (inline PTX), %d never ran\n",
  scalar @rows, $ran, $ptx, $missing;
$table .= "launched under a name that is no __global__ of kernels/ (DLK_LAUNCH must name the kernel, not a variable): "
  . join(', ', @unknown) . "\n" if @unknown;
print $table;
if ($outfile) {
  open my $o, '>', $outfile or die "$outfile: $!";
  print $o $table;
  close $o;
}
exit(($missing || @unknown) ? 1 : 0);
