"""Tests of footage to result file: video, landmarks, fit, world, scene, convert, cli, progress, bad inputs."""
