{
  "targets": [
    {
      "target_name": "afb_edge_unix",
      "sources": ["native/unix_socket.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
